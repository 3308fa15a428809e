// flags.go parses gardend's flags, each of which may also come from a
// GARDEN_* environment variable.

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

type options struct {
	apps        []string
	segment     string
	segmentSize int64
	bind        string
	advertise   string
	data        string
	join        []string
	cluster     string
	keyFile     string
	tlsCert     string
	tlsKey      string
	tlsCA       string
	admin       string
	snapshot    string
	snapEvery   time.Duration
	nodeName    string
	logFormat   string
	logLevel    string
	leave       time.Duration
}

var errHelp = errors.New("help shown")

type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l.v = append(*l.v, x)
		}
	}
	return nil
}

// parseFlags reads args and, for every flag not given, its GARDEN_*
// variable from env.
func parseFlags(args []string, env func(string) string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gardend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host, _ := os.Hostname()
	fs.Var(listFlag{&o.apps}, "app", "application `NAME` to replicate, segment /dev/shm/gardenstate-NAME (repeatable, or comma-separated)")
	fs.StringVar(&o.segment, "segment", "", "segment `PATH` (with exactly one --app)")
	fs.Int64Var(&o.segmentSize, "segment-size", 0, "size in `BYTES` of a segment gardend creates (default 64 MiB, as garden)")
	fs.StringVar(&o.bind, "bind", "0.0.0.0:7946", "membership (gossip) listen `ADDR:PORT`")
	fs.StringVar(&o.advertise, "advertise", "", "membership `ADDR:PORT` peers should use, if not --bind")
	fs.StringVar(&o.data, "data", "", "data stream listen `ADDR:PORT` (default: the --bind host, port 7948)")
	fs.Var(listFlag{&o.join}, "join", "peers' membership `ADDR:PORT,...` to join; retried until they answer, and again later")
	fs.StringVar(&o.cluster, "cluster", "default", "cluster `NAME`; agents of other clusters are refused")
	fs.StringVar(&o.keyFile, "key-file", "", "farm key `FILE`: 32 random bytes in base64 (gardend keygen)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "data stream certificate `PEM` (default: derived from the farm key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "data stream private key `PEM`")
	fs.StringVar(&o.tlsCA, "tls-ca", "", "`PEM` of the CA that signs every agent's certificate")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:7947", "admin HTTP `ADDR:PORT` (/metrics, /healthz, /v1/...); empty to disable")
	fs.StringVar(&o.snapshot, "snapshot", "", "snapshot `FILE` loaded at start and written at shutdown (one per app: FILE.APP)")
	fs.DurationVar(&o.snapEvery, "snapshot-interval", 5*time.Minute, "also write the snapshot this often (0: only at shutdown)")
	fs.StringVar(&o.nodeName, "node-name", host, "this agent's unique `NAME` in the farm")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&o.leave, "leave-timeout", 5*time.Second, "how long a graceful leave may take at shutdown")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gardend [flags]\n       gardend keygen\n\nFlags (each also from GARDEN_<NAME>, e.g. --key-file as GARDEN_KEY_FILE):\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "GARDEN_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := env(name); v != "" && !set[f.Name] {
			if err := f.Value.Set(v); err != nil && envErr == nil {
				envErr = fmt.Errorf("%s=%q: %v", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	return o, o.check()
}

func (o *options) check() error {
	switch {
	case len(o.apps) == 0:
		return errors.New("no --app given: name the application(s) whose segments to replicate")
	case o.segment != "" && len(o.apps) != 1:
		return errors.New("--segment needs exactly one --app")
	case o.keyFile == "":
		return errors.New("no --key-file: the farm key is required (create one with `gardend keygen`)")
	case (o.tlsCert != "" || o.tlsKey != "" || o.tlsCA != "") && (o.tlsCert == "" || o.tlsKey == "" || o.tlsCA == ""):
		return errors.New("--tls-cert, --tls-key and --tls-ca go together")
	case o.logFormat != "text" && o.logFormat != "json":
		return fmt.Errorf("--log-format %q: want text or json", o.logFormat)
	case o.nodeName == "":
		return errors.New("--node-name is empty")
	}
	return nil
}
