// B6's Go echo server (see bench/README.md).
//
// Usage: echo_go [--tls CERT KEY] PORT
//
// Listens on 127.0.0.1:PORT and echoes every byte back on each connection:
// net.Listen, one goroutine per accepted connection running a read/write
// loop. Go sets TCP_NODELAY on its connections by default. GOMAXPROCS is 1
// unless the environment sets GOMAXPROCS, so that the server, like the event
// loops, runs on one thread and the client keeps the other core. Exits 0 on
// SIGTERM or SIGINT. With --tls (B6tls) it serves TLS 1.3 with the
// certificate and key of the given PEM files (crypto/tls).
//
// Build without network: GO111MODULE=off go build -o echo_go echo_go.go
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	args := os.Args[1:]
	var cfg *tls.Config
	if len(args) == 4 && args[0] == "--tls" {
		cert, err := tls.LoadX509KeyPair(args[1], args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo_go:", err)
			os.Exit(1)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert},
			MinVersion: tls.VersionTLS13}
		args = args[3:]
	}
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: echo_go [--tls CERT KEY] PORT")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_go:", err)
		os.Exit(1)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			fmt.Fprintln(os.Stderr, "echo_go: accept:", err)
			continue
		}
		go echo(c)
	}
}
