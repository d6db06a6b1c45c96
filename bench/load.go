package main

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// target is what one case loads: a GET with its headers.
type target struct {
	addr    string // host:port
	path    string
	headers [][2]string
	// want is a piece of the body every answer must contain.
	want string
}

// result is what one load measured.
type result struct {
	requests int
	errors   int
	elapsed  time.Duration
	p50, p99 time.Duration
	// firstError describes the first failed answer.
	firstError string
}

func (r result) rate() float64 { return float64(r.requests) / r.elapsed.Seconds() }

// load sends requests to t over conns keep-alive connections, each one
// waiting for its answer before sending the next (like wrk), for d. The
// client is fasthttp's: a cheap client leaves more of the shared cores to
// the servers.
func load(t target, conns int, d time.Duration) result {
	client := &fasthttp.HostClient{
		Addr: t.addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var all []time.Duration
	res := result{}
	want := []byte(t.want)
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<14)
			errs, first := 0, ""
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + t.addr + t.path)
			for _, h := range t.headers {
				req.Header.Set(h[0], h[1])
			}
			for time.Now().Before(deadline) {
				began := time.Now()
				err := client.Do(req, resp)
				lat = append(lat, time.Since(began))
				switch {
				case err != nil:
					errs++
					if first == "" {
						first = err.Error()
					}
				case resp.StatusCode() != fasthttp.StatusOK || !bytes.Contains(resp.Body(), want):
					errs++
					if first == "" {
						first = fmt.Sprintf("%d %.200s", resp.StatusCode(), resp.Body())
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all = append(all, lat...)
			res.errors += errs
			if res.firstError == "" {
				res.firstError = first
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		res.p50 = all[len(all)*50/100]
		res.p99 = all[min(len(all)*99/100, len(all)-1)]
	}
	return res
}
