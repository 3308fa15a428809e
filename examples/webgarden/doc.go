// Command webgarden is a web garden: several worker processes of this
// program serve one port and share their sessions through one segment, so
// any worker can serve any request of a session.
//
//	go run ./examples/webgarden
//
// starts 4 workers on 127.0.0.1:8080 and prints the URL. Every response
// says which worker served it (the X-Garden-Worker header); reload the page
// and watch the visit count go on across workers. Kill a worker (kill -9
// <pid>): the parent starts another and no session is lost. kill -HUP
// <parent> replaces the workers one by one; Ctrl-C stops them all.
//
// # Basics
//
// Flags:
//
//	-workers N      worker processes (default 4)
//	-addr HOST:PORT address to serve (default 127.0.0.1:8080; port 0 picks one)
//	-app NAME       application name (default "webgarden")
//	-segment PATH   segment file (default /dev/shm/gardenstate-<app>)
//	-key-file PATH  the farm key (32 bytes in base64, as `openssl rand -base64
//	                32` prints). Without it the workers of this host share a
//	                random key kept in their segment.
//	-farm ADDR      the admin address of this host's gardend agent, for
//	                read-your-writes across hosts: when a request's cookie
//	                shows a newer session than this host holds, the worker
//	                asks the agent with GET
//	                http://ADDR/v1/fetch?app=APP&key=<key>&version=<time>.<node>&timeout=<left>
//	                (key in unpadded URL-safe base64) and waits up to
//	                -freshness-timeout. It needs gardend running; without
//	                -farm the local copy is served, which is right for a
//	                single host.
//	-freshness-timeout D  with -farm: how long a request waits for the newer
//	                copy (default 100ms, garden's FreshnessTimeout; the
//	                agent allows up to 10s)
//
// Pages:
//
//	GET  /              an HTML page: visit counter, serving worker, a note form
//	POST /note          stores the form's note, then back to /
//	GET  /api/session   {"id": "...", "worker": pid, "values": {...}}
//	POST /api/session   stores the form fields as strings, then as GET
//	POST /api/incr?k=K  increments the integer K: {"value": n, "worker": pid}
//
// # Caveats
//
// It serves plain HTTP, so its session cookie is not marked Secure; put it
// behind TLS before exposing it. -farm needs gardend.
package main
