// Starts dynalite (in-memory) bound to 127.0.0.1, with table operations that
// complete at once, and survives clients that disconnect mid-request
// (abort-guard.js).
// Usage: node dynalite.js PORT
'use strict'

require('./abort-guard.js')

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node dynalite.js PORT')
  process.exit(2)
}

const server = require('dynalite')({
  createTableMs: 0,
  deleteTableMs: 0,
  updateTableMs: 0,
})

server.on('error', (err) => {
  console.error('dynalite: %s', err.message)
  process.exit(1)
})

server.listen(port, '127.0.0.1', () => {
  console.log('Dynalite listening at: http://127.0.0.1:%d', port)
})
