// Keeps an emulator alive when a client goes away in the middle of a request.
//
// dynalite and kinesalite both do `req.on('error', err => { throw err })`, so
// a client that is killed (kill -9 of ferry in the resume tests) or that
// resets its connection while sending a body takes the whole in-memory
// emulator down with an uncaught "aborted" error. Real AWS endpoints simply
// drop such a request; so do we: an error on an incoming request is logged and
// the request is abandoned (its client is gone, nobody waits for an answer).
'use strict'

const http = require('http')

const on = http.IncomingMessage.prototype.on
http.IncomingMessage.prototype.on = function (event, listener) {
  if (event !== 'error') {
    return on.call(this, event, listener)
  }
  return on.call(this, event, (err) => {
    console.error('%s: request from a client that went away dropped (%s)', new Date().toISOString(), err.code || err.message)
  })
}
http.IncomingMessage.prototype.addListener = http.IncomingMessage.prototype.on
