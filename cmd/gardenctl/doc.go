// Gardenctl is the debug CLI of gardenstate: it shows what is in a segment
// and what the host's agent is doing, without stopping anything.
//
// # Basics
//
// Segment commands attach to a segment like one more worker process (they
// never create one) and read it one stripe at a time while workers keep
// serving:
//
//	gardenctl segments             the segments in /dev/shm (or --dir)
//	gardenctl stat                 header, fill, counters, stripe balance, processes
//	gardenctl ls                   entries: key, size, version, node, deadline
//	gardenctl ls --expired         entries past their deadline, not dropped yet
//	gardenctl get ID               one session, msgpack decoded to JSON, last access
//	gardenctl verify               consistency check (exit 0 clean, 1 problems, 2 could not check)
//	gardenctl watch                live rates, and replication lag with --agent
//	gardenctl dump FILE            export entries (see internal/dumpfile)
//	gardenctl load FILE            import them, newer data already present wins
//	gardenctl rm ID --yes          delete one entry
//	gardenctl flush --yes          delete every entry
//
// The segment is --segment PATH or --app NAME (<dir>/gardenstate-NAME), or
// GARDEN_SEGMENT / GARDEN_APP. Agent commands ask gardend's admin API at
// --agent (default 127.0.0.1:7947, or GARDEN_AGENT):
//
//	gardenctl status               node, cluster, lag per application (GET /v1/status)
//	gardenctl peers                members, their lag, peers refused at join (GET /v1/peers)
//
// Every command prints a table, or JSON with --json. gardenctl completion
// prints a shell completion script.
//
// # Caveats
//
// Entries past their deadline are invisible to reads and dropped lazily;
// ls --expired lists those not dropped yet. get only looks: it is not
// counted in stat's counters and does not change eviction order. Deletes
// (rm, flush) leave tombstones that the agent replicates to every host. A
// dump is copied stripe by stripe, not at one instant. Linux only, like
// the segments themselves.
//
// # Reading the source
//
// app.go builds the command tree and maps errors to exit statuses;
// target.go picks and attaches the segment; each command has its own
// file; session.go decodes session values; internal/dumpfile holds the
// dump format. Tests run the commands in-process (run's counterpart
// app.run) against segments in temporary directories, with worker
// processes re-executed from the test binary (main_test.go).
package main
