"""A run served over a Unix socket in its session directory, and the client that drives it.

protocol   the versioned JSON-lines messages, their strict schema and size limits
lock       one writer per session (flock), and who holds it
server     serves a Trainer: metrics every log interval, history to catch up, control
client     RemoteRun: the same face as a local run (engine.run), over the socket
"""
