package prefork

// prefork_test.go runs the test binary itself as a prefork program (TestMain
// re-enters it in a role named by an environment variable; its workers are
// copies of it in the same role) and checks serving, crash restarts,
// rolling replacement, graceful stop and the parent's death.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gardenstate/gardenstate/internal/testwait"
)

const roleEnv = "GARDEN_PREFORK_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(roleEnv) {
	case "":
		os.Exit(m.Run())
	case "app":
		os.Exit(app(false))
	case "badapp":
		os.Exit(app(true))
	default:
		fmt.Fprintln(os.Stderr, "unknown role")
		os.Exit(2)
	}
}

// app is the program under test: a server that says which worker served.
func app(failSetup bool) int {
	workers, _ := strconv.Atoi(os.Getenv("PREFORK_TEST_WORKERS"))
	cfg := Config{
		Addr:            "127.0.0.1:0",
		Workers:         workers,
		ShutdownTimeout: 5 * time.Second,
		ReadyTimeout:    10 * time.Second,
		OnReady:         func(a net.Addr) { fmt.Println("ready", a.String()) },
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, nil)),
	}
	err := Run(context.Background(), cfg, func() (*http.Server, error) {
		if failSetup {
			return nil, errors.New("setup failed on purpose")
		}
		mux := http.NewServeMux()
		// The worker's own SIGTERM: /slow answers only after it, so the
		// request is provably still at work when the stop comes (or after
		// a bound, so that a lost signal fails on the body, not by hanging).
		stopping := make(chan os.Signal, 1)
		signal.Notify(stopping, syscall.SIGTERM)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, os.Getpid())
		})
		mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			select {
			case <-stopping:
				fmt.Fprint(w, "done")
			case <-time.After(cfg.ShutdownTimeout):
				fmt.Fprint(w, "no SIGTERM came")
			}
		})
		return &http.Server{Handler: mux}, nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

// farm is a running prefork parent.
type farm struct {
	cmd    *exec.Cmd
	url    string
	done   chan struct{}
	mu     sync.Mutex
	stderr strings.Builder
}

func startFarm(t *testing.T, role string, workers int) *farm {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"="+role, fmt.Sprint("PREFORK_TEST_WORKERS=", workers), quickRaceExit())
	f := &farm{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.stderr.Write(p)
		return len(p), nil
	})
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() {
		cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // and its workers, by their death signal
		<-f.done
	})
	if role != "app" {
		return f
	}
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "ready ") {
			t.Fatalf("parent said %q; stderr:\n%s", l, f.stderrText())
		}
		f.url = "http://" + strings.TrimPrefix(l, "ready ")
	case <-time.After(20 * time.Second):
		t.Fatalf("parent not ready; stderr:\n%s", f.stderrText())
	}
	return f
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

func (f *farm) stderrText() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stderr.String()
}

// wait waits for the parent to exit and returns its exit code.
func (f *farm) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-f.done:
		return f.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatalf("parent did not exit; stderr:\n%s", f.stderrText())
	}
	return -1
}

// client opens a new connection for every request.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}

// pid asks the farm which worker serves a new connection.
func (f *farm) pid() (int, error) {
	resp, err := client.Get(f.url + "/")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// pids sends requests until n different workers answered.
func (f *farm) pids(t *testing.T, n int) map[int]bool {
	t.Helper()
	seen := map[int]bool{}
	for i := 0; len(seen) < n; i++ {
		if i == 1000 {
			t.Fatalf("only %d workers answered 1000 requests", len(seen))
		}
		pid, err := f.pid()
		if err != nil {
			t.Fatal(err)
		}
		seen[pid] = true
	}
	return seen
}

// alive reports whether pid is a running (not zombie) process, and its
// parent.
func alive(pid int) (bool, int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false, 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ppid, _ := strconv.Atoi(f[1])
	return f[0] != "Z" && f[0] != "X", ppid
}

func pollGone(t *testing.T, pids map[int]bool) {
	t.Helper()
	testwait.For(t, 20*time.Second, fmt.Sprintf("workers %v to exit", pids), func() bool {
		for pid := range pids {
			if ok, _ := alive(pid); ok {
				return false
			}
		}
		return true
	})
}

func TestWorkersShareAddressAndStop(t *testing.T) {
	f := startFarm(t, "app", 3)
	pids := f.pids(t, 3)
	for pid := range pids {
		if ok, ppid := alive(pid); !ok || ppid != f.cmd.Process.Pid {
			t.Errorf("worker %d: alive %v, parent %d, want %d", pid, ok, ppid, f.cmd.Process.Pid)
		}
	}
	f.cmd.Process.Signal(syscall.SIGTERM)
	if code := f.wait(t); code != 0 {
		t.Errorf("parent exit %d; stderr:\n%s", code, f.stderrText())
	}
	pollGone(t, pids)
}

func TestCrashedWorkerIsRestarted(t *testing.T) {
	f := startFarm(t, "app", 3)
	pids := f.pids(t, 3)
	var victim int
	for pid := range pids {
		victim = pid
		break
	}
	syscall.Kill(victim, syscall.SIGKILL)
	pollGone(t, map[int]bool{victim: true})
	// Every request succeeds meanwhile; a new worker takes the slot.
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatal("no new worker answered")
		}
		pid, err := f.pid()
		if err != nil {
			t.Fatalf("request %d after the crash: %v", i, err)
		}
		if pid == victim {
			t.Fatal("the killed worker answered")
		}
		if !pids[pid] {
			break
		}
	}
}

func TestRollingReplaceRefusesNothing(t *testing.T) {
	f := startFarm(t, "app", 3)
	old := f.pids(t, 3)
	stop := make(chan struct{})
	var mu sync.Mutex
	fresh := map[int]bool{}
	var errs []error
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				pid, err := f.pid()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if !old[pid] {
					fresh[pid] = true
				}
				mu.Unlock()
			}
		}()
	}
	f.cmd.Process.Signal(syscall.SIGHUP)
	pollGone(t, old)
	testwait.For(t, 20*time.Second, "3 new workers to answer", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fresh) >= 3
	})
	close(stop)
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d requests failed during the replacement, first: %v; stderr:\n%s", len(errs), errs[0], f.stderrText())
	}
}

func TestStopIsGraceful(t *testing.T) {
	f := startFarm(t, "app", 2)
	resp, err := client.Get(f.url + "/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The headers are here: the request is running. Stop the farm.
	f.cmd.Process.Signal(syscall.SIGTERM)
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "done" {
		t.Errorf("in-flight request: %q, %v", body, err)
	}
	if code := f.wait(t); code != 0 {
		t.Errorf("parent exit %d", code)
	}
}

func TestParentDeathStopsWorkers(t *testing.T) {
	f := startFarm(t, "app", 2)
	pids := f.pids(t, 2)
	f.cmd.Process.Kill()
	f.wait(t)
	pollGone(t, pids)
}

func TestFirstStartFailure(t *testing.T) {
	f := startFarm(t, "badapp", 2)
	if code := f.wait(t); code != 1 || !strings.Contains(f.stderrText(), "failed to start") {
		t.Errorf("exit %d; stderr:\n%s", code, f.stderrText())
	}
}

func TestRunErrors(t *testing.T) {
	setup := func() (*http.Server, error) { return &http.Server{}, nil }
	for _, c := range []Config{{Addr: "nope"}, {Addr: ":0", Workers: -1}, {Addr: ":0", RestartDelay: time.Hour}} {
		if err := Run(context.Background(), c, setup); !errors.Is(err, ErrBadConfig) {
			t.Errorf("Run(%+v) = %v, want ErrBadConfig", c, err)
		}
	}
	t.Setenv(envWorker, "0")
	t.Setenv(envParent, "1")
	if !IsWorker() || WorkerID() != 0 {
		t.Error("worker environment not recognised")
	}
	if err := Run(context.Background(), Config{Addr: "127.0.0.1:0"}, setup); !errors.Is(err, ErrNotWorker) {
		t.Errorf("worker Run without a parent: %v", err)
	}
}

// quickRaceExit returns the GORACE setting that spares a child built with
// -race the race detector's one-second sleep at exit.
func quickRaceExit() string {
	return "GORACE=" + strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0")
}
