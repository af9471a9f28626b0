// B6tls's client (see bench/README.md): the B6 workload over TLS 1.3, the
// same program for every server.
//
// Usage: echo_tls_client [-r RUNTIME] [-p SERVER_PID] [-w WARMUP_S]
//                        -ca CA_FILE HOST PORT CONNECTIONS SIZE SECONDS
//
// Opens CONNECTIONS TLS 1.3 connections to HOST:PORT (the server's
// certificate checked against CA_FILE, for the name "localhost"), each
// sending SIZE bytes and waiting for the same SIZE bytes back, over and
// over; after WARMUP_S seconds (default 1) it counts the round trips of a
// window of SECONDS and prints, like B6's client:
//
//	INFO connections=... seconds=... rt=... client_cpu_us_per_rt=...
//	     server_cpu_us_per_rt=...
//	RESULT workload=B6tls runtime=RUNTIME value=<rt/s> unit=rt/s lower_is_better=0
//	RESULT workload=B6tlscpu runtime=RUNTIME value=<µs> unit=µs/rt lower_is_better=1
//
// The server's CPU time (user + system, all threads) is read from
// /proc/SERVER_PID/stat at the window's edges. Runs on one thread
// (GOMAXPROCS 1 unless the environment sets it), as B6's libuv client does.
//
// Build without network: GO111MODULE=off go build -o echo_tls_client echo_tls_client.go
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func serverCPU(pid int) float64 {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return (u + st) / 100.0 // USER_HZ
}

func selfCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) +
		float64(ru.Utime.Usec+ru.Stime.Usec)*1e-6
}

func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "echo_tls_client: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	rtName := flag.String("r", "server", "runtime name for the RESULT lines")
	pid := flag.Int("p", 0, "server pid (for its CPU time)")
	warmup := flag.Float64("w", 1, "warm-up seconds")
	caFile := flag.String("ca", "", "CA certificate file (PEM)")
	flag.Parse()
	if flag.NArg() != 5 || *caFile == "" {
		fmt.Fprintln(os.Stderr, "usage: echo_tls_client [-r RUNTIME] [-p SERVER_PID] [-w WARMUP_S] -ca CA_FILE HOST PORT CONNECTIONS SIZE SECONDS")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	host, port := flag.Arg(0), flag.Arg(1)
	n, err1 := strconv.Atoi(flag.Arg(2))
	size, err2 := strconv.Atoi(flag.Arg(3))
	secs, err3 := strconv.ParseFloat(flag.Arg(4), 64)
	if err1 != nil || err2 != nil || err3 != nil || n <= 0 || size <= 0 || secs <= 0 {
		fail("bad CONNECTIONS, SIZE or SECONDS")
	}
	pem, err := os.ReadFile(*caFile)
	if err != nil {
		fail("%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		fail("no certificate in %s", *caFile)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost",
		MinVersion: tls.VersionTLS13}

	conns := make([]*tls.Conn, n)
	for i := range conns {
		c, err := tls.Dial("tcp", host+":"+port, cfg)
		if err != nil {
			fail("connection %d: %v", i, err)
		}
		conns[i] = c
	}
	counts := make([]uint64, n)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failed atomic.Value
	for i, c := range conns {
		wg.Add(1)
		go func(i int, c *tls.Conn) {
			defer wg.Done()
			out := bytes.Repeat([]byte{'x'}, size)
			in := make([]byte, size)
			for !stop.Load() {
				if _, err := c.Write(out); err != nil {
					failed.Store(err.Error())
					return
				}
				if _, err := io.ReadFull(c, in); err != nil {
					failed.Store(err.Error())
					return
				}
				atomic.AddUint64(&counts[i], 1)
			}
		}(i, c)
	}
	total := func() uint64 {
		var s uint64
		for i := range counts {
			s += atomic.LoadUint64(&counts[i])
		}
		return s
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	rt0, t0, c0, s0 := total(), time.Now(), selfCPU(), serverCPU(*pid)
	time.Sleep(time.Duration(secs * float64(time.Second)))
	rt1, t1, c1, s1 := total(), time.Now(), selfCPU(), serverCPU(*pid)
	stop.Store(true)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if f := failed.Load(); f != nil && rt1 == rt0 {
		fail("%v", f)
	}
	rt := float64(rt1 - rt0)
	if rt == 0 {
		fail("no round trip in the measured window")
	}
	wall := t1.Sub(t0).Seconds()
	fmt.Printf("INFO connections=%d size=%d warmup=%.1f seconds=%.3f rt=%d rt_per_s=%.1f client_cpu_s=%.3f client_cpu_us_per_rt=%.3f",
		n, size, *warmup, wall, rt1-rt0, rt/wall, c1-c0, (c1-c0)*1e6/rt)
	if s0 >= 0 && s1 >= 0 {
		fmt.Printf(" server_cpu_s=%.3f server_cpu_us_per_rt=%.3f", s1-s0, (s1-s0)*1e6/rt)
	}
	fmt.Println()
	fmt.Printf("RESULT workload=B6tls runtime=%s value=%.1f unit=rt/s lower_is_better=0\n", *rtName, rt/wall)
	if s0 >= 0 && s1 >= 0 {
		fmt.Printf("RESULT workload=B6tlscpu runtime=%s value=%.3f unit=\u00b5s/rt lower_is_better=1\n", *rtName, (s1-s0)*1e6/rt)
	}
}
