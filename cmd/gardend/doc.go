// Command gardend is the gardenstate host agent: one runs on every host of a
// farm, attached to the host's segments, and replicates every session change
// to the other hosts so that any host can serve any user.
//
//	gardend keygen > /etc/gardenstate/farm.key
//	gardend --app shop --cluster prod --key-file /etc/gardenstate/farm.key \
//	        --bind 10.0.0.11:7946 --join 10.0.0.12:7946,10.0.0.13:7946
//
// Every flag can also be set from the environment: --key-file as
// GARDEN_KEY_FILE, --join as GARDEN_JOIN, and so on. A flag given on the
// command line wins over the environment.
//
// The admin address (default 127.0.0.1:7947) serves /metrics, /healthz,
// /v1/status, /v1/peers and /v1/fetch. SIGTERM or SIGINT leaves the cluster
// gracefully and writes the final snapshot.
package main
