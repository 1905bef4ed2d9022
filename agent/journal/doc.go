// Package journal is the failover history: a bounded, append-only journal
// of JSON lines in the agent's state directory, and its reader.
//
// The daemon appends an Event for every transition, mutating cloud call,
// confirmation, reclaim, conflict, drain, resume and hook run. Append never
// waits for the disk: it hands the event to a bounded queue that one
// goroutine writes out, each event as a single write(2) of a whole line to
// a file opened with O_APPEND, never fsynced. A crash may lose the last
// events or tear the last line; that is accepted, and Open terminates a
// torn line so that the next event starts on a line of its own. When the
// queue is full the event is dropped, counted, and noted in the journal.
//
// The current file is history.jsonl; when the next line would take it past
// Options.MaxBytes it becomes history.1.jsonl, history.1.jsonl becomes
// history.2.jsonl and so on, and the oldest beyond Options.Keep goes, so
// the journal never holds more than (Keep+1)*MaxBytes.
//
// Read works on the files alone, without the daemon: it reads the rotated
// files oldest first, then the current one, skips (and counts) the lines
// that do not parse, and keeps at most the events asked for. WriteText
// renders events for people, with times relative to the transition each
// event belongs to.
package journal
