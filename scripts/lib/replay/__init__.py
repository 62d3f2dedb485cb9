"""``release compare``: replay a stage's captured production requests through a candidate and a champion model
locally (ONNX Runtime through app/serving's own decode, letterbox and postprocess) and report how far their
detections agree, per class, without labels.

capture.py reads SageMaker data capture, models.py fetches and opens the two models, matching.py pairs boxes,
replay.py runs the requests and keeps the figures, drawing.py draws the images they disagree on most, report.py is
the JSON report the Prod preflight shows (scripts/release/evidence.py).
"""
