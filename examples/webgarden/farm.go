// farm.go asks the host's gardend agent for a session newer than the local
// copy, for read-your-writes across hosts (-farm).

package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/gardenstate/gardenstate/shm"
)

// farmFreshness returns a garden.Config.Freshness function that asks the
// agent at addr to bring key to version want (or newer) into the segment:
// GET http://addr/v1/fetch?app=APP&key=<key, unpadded URL-safe base64>&version=<time>.<node>.
// The agent waits as long as ctx has left (garden's FreshnessTimeout; at
// most the 10 s the agent allows). Any answer but 200 OK is an error;
// garden then serves the local copy.
func farmFreshness(addr, app string) func(ctx context.Context, key []byte, want shm.Version) error {
	client := &http.Client{}
	return func(ctx context.Context, key []byte, want shm.Version) error {
		q := url.Values{}
		q.Set("app", app)
		q.Set("key", base64.RawURLEncoding.EncodeToString(key))
		q.Set("version", fmt.Sprintf("%d.%d", want.Time, want.Node))
		if d, ok := ctx.Deadline(); ok {
			left := time.Until(d)
			if left <= 0 {
				return context.DeadlineExceeded
			}
			q.Set("timeout", min(left, 10*time.Second).String())
		}
		req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/v1/fetch?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("gardend fetch: %s", resp.Status)
		}
		return nil
	}
}
