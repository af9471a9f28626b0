// B9 in Go: COUNT GETs of URL, INFLIGHT at once, with net/http's client.
//
// One http.Client whose Transport keeps up to INFLIGHT idle connections to
// the host (MaxIdleConnsPerHost; the default of 2 would close most of them
// after every response), and INFLIGHT goroutines each taking the next
// request number until COUNT are done. Every response must be 200 with
// -expect bytes (default 1024). GOMAXPROCS is 1 unless the environment
// says otherwise, as for the other Go peers.
//
//	b9_go [-expect BYTES] URL COUNT INFLIGHT
//
// Prints RESULT workload=B9 runtime=go value=<req/s> unit=req/s
// lower_is_better=0 and an INFO line (connections opened, seconds).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	expect := flag.Int("expect", 1024, "bytes every response must have")
	flag.Parse()
	if flag.NArg() != 3 {
		fmt.Fprintln(os.Stderr, "usage: b9_go [-expect BYTES] URL COUNT INFLIGHT")
		os.Exit(2)
	}
	url := flag.Arg(0)
	count, err1 := strconv.Atoi(flag.Arg(1))
	inflight, err2 := strconv.Atoi(flag.Arg(2))
	if err1 != nil || err2 != nil || count <= 0 || inflight <= 0 {
		fmt.Fprintln(os.Stderr, "b9_go: COUNT and INFLIGHT must be > 0")
		os.Exit(2)
	}
	if inflight > count {
		inflight = count
	}

	var opened int64
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			atomic.AddInt64(&opened, 1)
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        inflight,
		MaxIdleConnsPerHost: inflight,
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	var next int64
	var wg sync.WaitGroup
	var failed atomic.Value
	t0 := time.Now()
	for w := 0; w < inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= int64(count) {
				resp, err := client.Get(url)
				if err != nil {
					failed.Store(err.Error())
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(body) != *expect {
					failed.Store(fmt.Sprintf("%s: status %d, %d bytes, %v",
						url, resp.StatusCode, len(body), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	secs := time.Since(t0).Seconds()
	if f := failed.Load(); f != nil {
		fmt.Fprintln(os.Stderr, "b9_go:", f)
		os.Exit(1)
	}
	fmt.Printf("RESULT workload=B9 runtime=go value=%.1f unit=req/s lower_is_better=0\n",
		float64(count)/secs)
	fmt.Printf("INFO connections=%d seconds=%.3f gomaxprocs=%d\n", opened, secs,
		runtime.GOMAXPROCS(0))
}
