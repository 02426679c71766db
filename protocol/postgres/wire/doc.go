// Package wire frames the PostgreSQL frontend/backend protocol (version 3) for a pooler.
//
// A pooler forwards almost every message unchanged, so this package works on raw
// messages: Reader returns each message as the bytes that arrived (type byte, length,
// body) without decoding it, and Writer appends raw messages or encodes pgproto3
// messages into one buffer that is written with a single Flush. Messages the pooler must
// understand are decoded by the caller with pgproto3's Decode methods on the body.
//
// Limits are on by default: a startup packet is at most MaxStartupPacketSize bytes and a
// regular message at most the Reader's maximum (DefaultMaxMessageSize unless set);
// anything larger, or a length that cannot be valid, is an error before any memory is
// allocated for it.
//
// Memory: an idle Reader holds no pooled buffer, only a small inline array, so ten
// thousand idle client connections cost little. Buffers for bursts come from
// size-classed sync.Pools and go back when the Reader has consumed them. A message
// longer than StreamSize is read by NextPart in parts through one pooled buffer, so it
// costs the Reader at most that buffer whatever its declared length; Next and Rest
// read a message whole in a buffer of its own that is dropped afterwards.
package wire
