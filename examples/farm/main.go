// Command farm runs a three-host gardenstate farm on one machine: on each of
// 127.0.0.1, 127.0.0.2 and 127.0.0.3 a gardend agent and a two-worker
// webgarden, each host with its own segment, then shows a session written
// on one host being read on another.
//
//	go run ./examples/farm
//
// It builds cmd/gardend and examples/webgarden into a temporary directory
// (so it needs the Go toolchain, as go run does), generates a farm key,
// supervises every process (an agent that dies is restarted) and stops them
// all on Ctrl-C. With -web-port 0 and -gossip-port 0 every port is chosen
// by the kernel (the tests run it that way).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gardenstate/gardenstate/garden"
)

func main() {
	hosts := flag.Int("hosts", 3, "hosts to run, on 127.0.0.1, 127.0.0.2, ...")
	workers := flag.Int("workers", 2, "webgarden workers per host")
	webPort := flag.Int("web-port", 8080, "webgarden port on every host (0: any free port)")
	gossipPort := flag.Int("gossip-port", 7946, "gardend membership port; admin is +1, data +2 (0: any free ports)")
	dir := flag.String("dir", "/dev/shm", "where the hosts' segments go")
	demo := flag.Bool("demo", true, "write a session on host 1 and read it on host 2 once the farm is up")
	freshness := flag.Duration("freshness-timeout", 0, "how long a request waits for a newer copy from another host (0: webgarden's default)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	webFlags := []string{"-workers", strconv.Itoa(*workers), "-freshness-timeout", freshness.String()}
	if err := run(ctx, *hosts, webFlags, *webPort, *gossipPort, *dir, *demo); err != nil {
		fmt.Fprintln(os.Stderr, "farm:", err)
		os.Exit(1)
	}
}

// run starts the farm; webFlags go to every webgarden.
func run(ctx context.Context, hosts int, webFlags []string, webPort, gossipPort int, dir string, demo bool) error {
	if hosts < 1 || hosts > 200 {
		return fmt.Errorf("-hosts %d: want 1 to 200", hosts)
	}
	tmp, err := os.MkdirTemp("", "gardenstate-farm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	fmt.Println("farm: building gardend and webgarden ...")
	gardend, webgarden := filepath.Join(tmp, "gardend"), filepath.Join(tmp, "webgarden")
	for bin, pkg := range map[string]string{gardend: "./cmd/gardend", webgarden: "./examples/webgarden"} {
		if err := build(bin, pkg); err != nil {
			return err
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(tmp, "farm.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		return err
	}

	f := &farm{}
	defer f.stopAll()
	var join string
	var urls []string
	for i := 1; i <= hosts; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		name := fmt.Sprintf("host%d", i)
		seg := filepath.Join(dir, fmt.Sprintf("gardenstate-farm-%s", name))
		defer removeSegment(seg)
		// Fixed ports, so that a restarted agent comes back where its
		// peers and its webgarden expect it; with -gossip-port 0 they are
		// picked now from the kernel's free ports.
		ports := [3]int{gossipPort, gossipPort + 1, gossipPort + 2}
		if gossipPort == 0 {
			for j := range ports {
				if ports[j], err = freePort(ip); err != nil {
					return err
				}
			}
		}
		port := func(off int) string { return net.JoinHostPort(ip, strconv.Itoa(ports[off])) }
		args := []string{"--app", "farm", "--segment", seg, "--cluster", "farm", "--key-file", keyFile,
			"--node-name", name, "--bind", port(0), "--admin", port(1), "--data", port(2)}
		if join != "" {
			args = append(args, "--join", join)
		}
		agent, err := f.start(ctx, name+"/gardend", gardend, args, agentReady, true)
		if err != nil {
			return err
		}
		if join == "" {
			join = agent["gossip"]
		}
		web, err := f.start(ctx, name+"/webgarden", webgarden, append([]string{"-app", "farm", "-segment", seg, "-key-file", keyFile,
			"-farm", agent["admin"], "-addr", net.JoinHostPort(ip, strconv.Itoa(webPort))}, webFlags...),
			webReady, false)
		if err != nil {
			return err
		}
		urls = append(urls, web["url"])
		fmt.Printf("farm: %s  web %s  agent admin http://%s/v1/peers\n", name, web["url"], agent["admin"])
	}
	fmt.Printf("farm: %d hosts up; a session may be served by any of them. Ctrl-C stops the farm.\n", hosts)
	if demo && len(urls) > 1 {
		if err := showDemo(ctx, urls[0], urls[1]); err != nil {
			fmt.Println("farm: demo:", err)
		}
	}
	<-ctx.Done()
	fmt.Println("farm: stopping")
	return nil
}

// freePort asks the kernel for a free TCP port on ip (and checks UDP, which
// gossip also uses, is free on it too).
func freePort(ip string) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		u, err := net.ListenPacket("udp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("no free port on %s", ip)
}

// build compiles a package of this module.
func build(out, pkg string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %s: %w", pkg, err)
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (run from the gardenstate module)", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the gardenstate module: run go run ./examples/farm from the repository")
	}
	return filepath.Dir(mod), nil
}

func removeSegment(path string) {
	os.Remove(path)
	os.Remove(garden.JanitorPath(path))
}

var (
	agentRE = regexp.MustCompile(`msg="gardend running" gossip=(\S+) data=\S+ admin=(\S+)`)
	webRE   = regexp.MustCompile(`serving (http://\S+/) with`)
)

func agentReady(line string) map[string]string {
	if m := agentRE.FindStringSubmatch(line); m != nil {
		return map[string]string{"gossip": m[1], "admin": m[2]}
	}
	return nil
}

func webReady(line string) map[string]string {
	if m := webRE.FindStringSubmatch(line); m != nil {
		return map[string]string{"url": strings.TrimSuffix(m[1], "/")}
	}
	return nil
}

// farm supervises the child processes.
type farm struct {
	mu       sync.Mutex
	procs    map[string]*os.Process
	stopping bool
	wg       sync.WaitGroup
}

// start runs a child, waits until ready finds what it prints at start-up,
// and, if restart is set, starts it again whenever it dies.
func (f *farm) start(ctx context.Context, name, bin string, args []string, ready func(string) map[string]string, restart bool) (map[string]string, error) {
	got := make(chan map[string]string, 1)
	exited := make(chan error, 1)
	if err := f.spawn(name, bin, args, ready, got, exited); err != nil {
		return nil, err
	}
	var info map[string]string
	select {
	case info = <-got:
	case err := <-exited:
		return nil, fmt.Errorf("%s exited at start: %v", name, err)
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s did not start within a minute", name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			err := <-exited
			f.mu.Lock()
			stopping := f.stopping
			f.mu.Unlock()
			if stopping || !restart {
				return
			}
			fmt.Printf("farm: %s died (%v); restarting it\n", name, err)
			if err := f.spawn(name, bin, args, ready, make(chan map[string]string, 1), exited); err != nil {
				fmt.Printf("farm: restarting %s: %v\n", name, err)
				return
			}
		}
	}()
	return info, nil
}

func (f *farm) spawn(name, bin string, args []string, ready func(string) map[string]string, got chan map[string]string, exited chan error) error {
	cmd := exec.Command(bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	f.mu.Lock()
	if f.procs == nil {
		f.procs = map[string]*os.Process{}
	}
	f.procs[name] = cmd.Process
	f.mu.Unlock()
	fmt.Printf("farm: %s started, pid %d\n", name, cmd.Process.Pid)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			if !sent {
				if info := ready(sc.Text()); info != nil {
					got <- info
					sent = true
				}
			}
			if os.Getenv("FARM_VERBOSE") != "" {
				fmt.Printf("[%s] %s\n", name, sc.Text())
			}
		}
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		exited <- err
	}()
	return nil
}

func (f *farm) stopAll() {
	f.mu.Lock()
	f.stopping = true
	for _, p := range f.procs {
		p.Signal(syscall.SIGTERM)
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// showDemo writes a note on one host and reads it on another with the same
// cookie, as a load balancer without sticky sessions would send them.
func showDemo(ctx context.Context, first, second string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.PostForm(first+"/api/session", url.Values{"note": {"written on host 1"}})
	if err != nil {
		return err
	}
	var wrote map[string]any
	json.NewDecoder(resp.Body).Decode(&wrote)
	resp.Body.Close()
	cookie := resp.Header.Get("Set-Cookie")
	if i := strings.IndexByte(cookie, ';'); i >= 0 {
		cookie = cookie[:i]
	}
	fmt.Printf("farm: POST %s/api/session note=...  -> %v\n", first, wrote)
	req, _ := http.NewRequestWithContext(ctx, "GET", second+"/api/session", nil)
	req.Header.Set("Cookie", cookie)
	resp, err = client.Do(req)
	if err != nil {
		return err
	}
	var read map[string]any
	json.NewDecoder(resp.Body).Decode(&read)
	resp.Body.Close()
	fmt.Printf("farm: GET  %s/api/session (same cookie) -> %v\n", second, read)
	return nil
}
