package handlers

import (
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// clientIP is the address a request is counted against (rate limits, sign-in
// attempts): the connecting peer, unless that peer is a trusted proxy
// (TRUSTED_PROXIES). Then X-Forwarded-For names the client, read from the
// right: each trusted proxy appends the address it got the request from, so
// the first address that is not itself a trusted proxy is the client. What
// lies left of it was written by the client and is never believed, so a
// client cannot pick its own budget. fiber's c.IP() takes the leftmost
// address instead, so it is not used for this.
func (h *Handlers) clientIP(c *fiber.Ctx) string {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	client := peer.Unmap()
	if !h.trustedProxy(client) {
		return client.String()
	}
	headers := c.Request().Header.PeekAll(fiber.HeaderXForwardedFor)
	for i := len(headers) - 1; i >= 0; i-- {
		hops := strings.Split(string(headers[i]), ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, ok := parseHop(hops[j])
			if !ok {
				// Not an address: nothing further left can be trusted.
				return client.String()
			}
			client = hop
			if !h.trustedProxy(hop) {
				return client.String()
			}
		}
	}
	// Every hop was a trusted proxy: the leftmost is the closest to the client.
	return client.String()
}

// parseHop reads one X-Forwarded-For entry: an address, perhaps with a port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func (h *Handlers) trustedProxy(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range h.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
