// Package prefork runs N worker processes of the same binary on one address,
// so that a web garden uses every core and survives any worker crashing,
// and replaces them one by one without refusing a connection.
//
// # Basics
//
// The same main runs as the parent and as every worker; Run tells them
// apart by an environment variable it sets for the workers
// (GARDEN_PREFORK_WORKER, with the worker's slot number):
//
//	var store *garden.Store
//	err := prefork.Run(ctx, prefork.Config{Addr: ":8080", Workers: 4}, func() (*http.Server, error) {
//		var err error
//		store, err = garden.Open(garden.Config{App: "shop"}) // every worker attaches to one segment
//		if err != nil {
//			return nil, err
//		}
//		return &http.Server{Handler: store.Middleware(mux)}, nil
//	})
//	if store != nil {
//		store.Close()
//	}
//
// The parent opens one listening socket per worker slot, all on Addr with
// SO_REUSEPORT, so the kernel spreads connections over them; each worker
// inherits its slot's socket (fd 3) and a pipe (fd 4) on which it reports
// that it is ready to serve. Because the parent keeps the sockets, no
// connection is ever refused for want of a worker: connections that arrive
// while a slot's worker restarts wait in its queue for the next one (a slot
// whose worker keeps crashing gives up its socket after a while, so its
// share of connections goes to the others), and Addr may have port 0.
//
// The parent:
//   - restarts a worker that exits, with exponential backoff from
//     RestartDelay to MaxRestartDelay (reset after a worker ran a minute);
//   - on SIGINT or SIGTERM (or when ctx ends) sends every worker SIGTERM,
//     waits for them to finish, and returns;
//   - on SIGHUP replaces the workers one at a time: it starts the new one
//     on the slot's socket, waits until it reports ready, then stops the
//     old one. A new binary at the same path is picked up this way.
//
// A worker told to stop closes its copy of the socket (the slot's other
// workers, and the parent, keep it open, so nothing queued on it is lost),
// turns keep-alives off, waits until every connection it accepted has had
// its request answered (at most 5 s for one that sends nothing), and then
// calls http.Server.Shutdown for the rest, all within ShutdownTimeout; the
// parent kills a worker that takes 5 s longer than that. (Shutdown alone
// would close, unanswered, a connection whose request it reads after it
// began.)
//
// Workers are started with Pdeathsig SIGTERM, so they stop if the parent
// dies, and they ignore SIGHUP.
//
// # Caveats
//
// Linux only. The first start of every worker must succeed (a worker that
// exits before reporting ready makes Run fail), so that a broken
// configuration stops the program instead of restarting forever.
package prefork
