// Starts kinesalite (in-memory) bound to 127.0.0.1 only: kinesalite's own CLI
// has no --host flag and would listen on every interface. It survives clients
// that disconnect mid-request (abort-guard.js).
// Usage: node kinesalite.js PORT
'use strict'

require('./abort-guard.js')

const port = Number(process.argv[2])
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node kinesalite.js PORT')
  process.exit(2)
}

const server = require('kinesalite')({
  createStreamMs: 0,
  deleteStreamMs: 0,
  updateStreamMs: 0,
  shardLimit: 100,
})

server.on('error', (err) => {
  console.error('kinesalite: %s', err.message)
  process.exit(1)
})

server.listen(port, '127.0.0.1', () => {
  console.log('Kinesalite listening at: http://127.0.0.1:%d', port)
})
