// Test-only driver of @cloud-copilot/iam-simulate (AGPL-3.0, never shipped): one JSON simulation per stdin line
// ({"request", "identityPolicies", "resourcePolicy"?}), one JSON answer per stdout line
// ({"result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied" | "Error", "detail"}).
// tests/journey/simulator.py runs it once per session.
'use strict'
const readline = require('node:readline')
const { runSimulation } = require('@cloud-copilot/iam-simulate')

const lines = readline.createInterface({ input: process.stdin, terminal: false })
lines.on('line', async (line) => {
  let answer
  try {
    const input = JSON.parse(line)
    const simulation = {
      request: input.request,
      identityPolicies: input.identityPolicies,
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: input.resourcePolicy,
    }
    const response = await runSimulation(simulation, {})
    if (response.resultType === 'error') {
      answer = { result: 'Error', detail: response.errors }
    } else {
      answer = { result: response.overallResult, detail: response.result ? response.result.analysis : null }
    }
  } catch (error) {
    answer = { result: 'Error', detail: String(error && error.stack ? error.stack : error) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
})
