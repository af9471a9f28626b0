// Go peer for aioc's benchmarks (see bench/README.md).
//
// Usage: go_bench WORKLOAD [-n N]
//
// WORKLOAD is one of B1, B2, B2ch, B3, B4, B4c, B5. It runs once and prints
// result lines on stdout:
//
//	RESULT workload=B1 runtime=go value=1200 unit=ns/task lower_is_better=1
//
// GOMAXPROCS is 1 unless the environment sets GOMAXPROCS, so that Go, like
// aioc and the event loops, runs its tasks on one thread. The task count N
// of B1, B3, B4 and B4c is 1,000,000 unless -n N or the environment variable
// BENCH_N says otherwise; B2 and B2ch always make 2,000,000 switches. B5
// passes 2,000,000 items unless -n N gives a count.
//
// Build without network: GO111MODULE=off go build -o go_bench go_bench.go
package main

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultN   = 1000000
	b2Switches = 2000000
	b5Items    = 2000000
	b5Capacity = 64
	seed       = 12345
)

// statusBytes returns a VmXXX field of /proc/self/status in bytes.
func statusBytes(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, field+":") {
			parts := strings.Fields(line)
			if len(parts) >= 2 {
				kib, _ := strconv.ParseInt(parts[1], 10, 64)
				return kib * 1024
			}
		}
	}
	return 0
}

// resetPeakRSS resets VmHWM to the current RSS (Linux >= 4.0), so that the
// peak read later belongs to the workload, and returns the baseline RSS.
func resetPeakRSS() int64 {
	if f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0); err == nil {
		f.WriteString("5")
		f.Close()
	}
	return statusBytes("VmRSS")
}

func result(workload string, value float64, unit string) {
	fmt.Printf("RESULT workload=%s runtime=go value=%s unit=%s lower_is_better=1\n",
		workload, strconv.FormatFloat(value, 'g', 6, 64), unit)
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go_bench: "+format+"\n", args...)
	os.Exit(1)
}

func perBytes(peak, base int64, n int) float64 {
	if peak < base {
		return 0
	}
	return float64(peak-base) / float64(n)
}

// B1: spawn n trivial goroutines (each stores its index as its result), wait
// for all of them with a WaitGroup, sum the results. Figures: wall time of
// spawn + join per task, and peak resident memory per task.
func b1(n int) {
	base := resetPeakRSS()
	t0 := time.Now()
	results := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			results[i] = i
			wg.Done()
		}(i)
	}
	wg.Wait()
	sum := 0
	for _, r := range results {
		sum += r
	}
	el := time.Since(t0)
	peak := statusBytes("VmHWM")
	if want := n * (n - 1) / 2; sum != want {
		fail("B1: wrong sum %d, expected %d", sum, want)
	}
	result("B1", float64(el.Nanoseconds())/float64(n), "ns/task")
	result("B1rss", perBytes(peak, base, n), "B/task")
}

// B2: two goroutines each loop b2Switches/2 times on runtime.Gosched(), so
// that with GOMAXPROCS=1 control goes back and forth between them. Figure:
// wall time per switch.
func b2() {
	per := b2Switches / 2
	var count int64
	var wg sync.WaitGroup
	wg.Add(2)
	t0 := time.Now()
	for k := 0; k < 2; k++ {
		go func() {
			for i := 0; i < per; i++ {
				count++ // one thread at a time with GOMAXPROCS=1
				runtime.Gosched()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if runtime.GOMAXPROCS(0) == 1 && count != b2Switches {
		fail("B2: %d switches, expected %d", count, b2Switches)
	}
	result("B2", float64(el.Nanoseconds())/b2Switches, "ns/switch")
}

// B2ch: ping-pong over two unbuffered channels; every send hands control to
// the receiving goroutine. b2Switches hand-offs in all (half each way).
// Figure: wall time per hand-off.
func b2ch() {
	per := b2Switches / 2
	ping := make(chan int)
	pong := make(chan int)
	done := make(chan int)
	t0 := time.Now()
	go func() {
		s := 0
		for i := 0; i < per; i++ {
			v := <-ping
			s += v
			pong <- v
		}
		done <- s
	}()
	for i := 0; i < per; i++ {
		ping <- i
		<-pong
	}
	s := <-done
	el := time.Since(t0)
	if s != per*(per-1)/2 {
		fail("B2ch: wrong sum %d", s)
	}
	result("B2ch", float64(el.Nanoseconds())/b2Switches, "ns/switch")
}

// B3: n goroutines alive at once, each in time.Sleep(1 s); all spawned, then
// all waited for. Figures: peak resident bytes per task (B3) and wall time
// (B3wall).
//
// The goroutines wait on a start gate that opens once all are spawned: Go
// runs a new goroutine at once, and spawning 1M sleeping goroutines takes
// more than 1 s here, so without the gate the first ones would be gone
// before the last ones exist (measured: at most about 400k alive at once),
// and the figure would not be per live task. With the gate Go does what
// asyncio does anyway (a created task starts sleeping only once the spawner
// yields), and all n are alive together.
func b3(n int) {
	base := resetPeakRSS()
	var done int64
	var wg sync.WaitGroup
	wg.Add(n)
	start := make(chan struct{})
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			<-start
			time.Sleep(time.Second)
			atomic.AddInt64(&done, 1)
			wg.Done()
		}()
	}
	close(start)
	wg.Wait()
	el := time.Since(t0)
	peak := statusBytes("VmHWM")
	if done != int64(n) {
		fail("B3: %d finished, expected %d", done, n)
	}
	result("B3", perBytes(peak, base, n), "B/task")
	result("B3wall", el.Seconds(), "s")
}

// deadlines returns n durations uniform in [0, 1 s] from a seeded PRNG.
func deadlines(n int) []time.Duration {
	rng := rand.New(rand.NewSource(seed))
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(rng.Int63n(int64(time.Second) + 1))
	}
	return ds
}

// B4: n goroutines each sleeping a random time in [0, 1 s]. Figure: wall time
// from the first spawn to the last wake-up, minus 1 s.
func b4(n int) {
	ds := deadlines(n)
	var done int64
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func(d time.Duration) {
			time.Sleep(d)
			atomic.AddInt64(&done, 1)
			wg.Done()
		}(ds[i])
	}
	wg.Wait()
	el := time.Since(t0)
	if done != int64(n) {
		fail("B4: %d finished, expected %d", done, n)
	}
	result("B4", el.Seconds()-1.0, "s")
}

// B4c: as B4 with plain timer callbacks, time.AfterFunc (which runs each
// callback in a goroutine of its own, the way Go timers work).
func b4c(n int) {
	ds := deadlines(n)
	var fired int64
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		time.AfterFunc(ds[i], func() {
			atomic.AddInt64(&fired, 1)
			wg.Done()
		})
	}
	wg.Wait()
	el := time.Since(t0)
	if fired != int64(n) {
		fail("B4c: %d fired, expected %d", fired, n)
	}
	result("B4c", el.Seconds()-1.0, "s")
}

// B5: one producer goroutine and one consumer pass n integers through a
// buffered channel of capacity 64; the consumer checks the sum. Figure: wall
// time per item.
func b5(n int) {
	ch := make(chan int, b5Capacity)
	done := make(chan int)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
	}()
	go func() {
		s := 0
		for i := 0; i < n; i++ {
			s += <-ch
		}
		done <- s
	}()
	s := <-done
	el := time.Since(t0)
	if want := n * (n - 1) / 2; s != want {
		fail("B5: wrong sum %d, expected %d", s, want)
	}
	result("B5", float64(el.Nanoseconds())/float64(n), "ns/item")
}

// B6x: n calls of a trivial function, each in a goroutine of its own that
// sends the result on a channel, 100 in flight (Go's idiom for a blocking
// call off the caller's goroutine). Figure: wall time per call.
func b6xTrivial(i int) int { return i }

func b6x(n int) {
	const inflight = 100
	results := make(chan int, inflight)
	start := time.Now()
	sum, launched := 0, 0
	for ; launched < inflight && launched < n; launched++ {
		go func(i int) { results <- b6xTrivial(i) }(launched + 1)
	}
	for done := 0; done < n; done++ {
		sum += <-results
		if launched < n {
			launched++
			go func(i int) { results <- b6xTrivial(i) }(launched)
		}
	}
	el := time.Since(start)
	if sum != n*(n+1)/2 {
		fail("B6x: wrong sum %d", sum)
	}
	result("B6x", float64(el.Nanoseconds())/1e3/float64(n), "us/call")
}

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	n := defaultN
	nGiven := false
	if s := os.Getenv("BENCH_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			fail("bad BENCH_N %q", s)
		}
		n = v
	}
	var args []string
	for i := 1; i < len(os.Args); i++ {
		if os.Args[i] == "-n" && i+1 < len(os.Args) {
			v, err := strconv.Atoi(os.Args[i+1])
			if err != nil {
				fail("bad -n %q", os.Args[i+1])
			}
			n = v
			nGiven = true
			i++
			continue
		}
		args = append(args, os.Args[i])
	}
	if len(args) != 1 || n < 1 {
		fmt.Fprintln(os.Stderr, "usage: go_bench B1|B2|B2ch|B3|B4|B4c|B5|B6x [-n N]")
		os.Exit(2)
	}
	switch args[0] {
	case "B1":
		b1(n)
	case "B2":
		b2()
	case "B2ch":
		b2ch()
	case "B3":
		b3(n)
	case "B4":
		b4(n)
	case "B4c":
		b4c(n)
	case "B6x":
		if !nGiven {
			n = 10000
			if s := os.Getenv("BENCH_N"); s != "" {
				n, _ = strconv.Atoi(s)
			}
		}
		b6x(n)
	case "B5":
		if !nGiven {
			n = b5Items
		}
		b5(n)
	default:
		fail("unknown workload %q", args[0])
	}
}
