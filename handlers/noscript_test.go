package handlers_test

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ava/console/views"
)

// TestFragmentWithoutHTMXIsAPage: a region's fragment asked for without
// htmx (the region's fallback link, followed when no script runs) answers
// the content inside the page layout, with the navigation.
func TestFragmentWithoutHTMXIsAPage(t *testing.T) {
	a := newTestApp(t)
	a.connectedToVapi()

	resp, body := a.get("/fragments/vapi/settings")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /fragments/vapi/settings without htmx: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	for _, want := range []string{
		"<html", `<nav aria-label="Main"`, `aria-current="page">Vapi settings</a>`, // the layout, Vapi marked current
		"Hello, thanks for calling.", "600 seconds", // the settings themselves
		`href="/vapi"`, // the way back to the live page
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `aria-busy="true"`) {
		t.Errorf("the page shows a skeleton:\n%s", body)
	}
	if got := resp.Header.Get("Vary"); !strings.Contains(got, "HX-Request") {
		t.Errorf("Vary = %q, want HX-Request in it", got)
	}

	// With htmx it stays a fragment.
	_, body = a.get("/fragments/vapi/settings", "HX-Request", "true")
	if strings.Contains(body, "<html") || !strings.Contains(body, "600 seconds") {
		t.Fatalf("the htmx fragment:\n%s", body)
	}

	// Every region's fallback answers a page.
	for _, p := range []string{"/fragments/vapi/changes", "/fragments/tokens", "/fragments/twilio/numbers"} {
		resp, body := a.get(p)
		if resp.StatusCode >= 500 || !strings.Contains(body, "<html") || !strings.Contains(body, `<nav aria-label="Main"`) {
			t.Errorf("GET %s without htmx: %d\n%s", p, resp.StatusCode, body)
		}
	}

	// Signed out: sent to sign in, like any page.
	a.cookies = map[string]string{}
	if resp, _ := a.get("/fragments/vapi/settings"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("signed out: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

var (
	regionTag = regexp.MustCompile(`<div [^>]*class="region"[^>]*hx-get="([^"]+)"[^>]*>(.*)</div>`)
	hrefAttr  = regexp.MustCompile(`href="([^"]+)"`)
)

// TestEveryLiveRegionOffersAFallbackLink: each region that loads with htmx
// (hx-get) carries, next to its skeleton, a plain link to the same content.
func TestEveryLiveRegionOffersAFallbackLink(t *testing.T) {
	found := 0
	err := fs.WalkDir(views.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := fs.ReadFile(views.FS, path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, `class="region"`) || !strings.Contains(line, "hx-get=") {
				continue
			}
			found++
			m := regionTag.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: a live region not on one line: %s", path, line)
				continue
			}
			if !strings.Contains(m[2], "{{loading ") {
				t.Errorf("%s: the region of %s shows no fallback link (use {{loading LABEL ROWS URL}}): %s", path, m[1], line)
				continue
			}
			if !strings.Contains(m[2], `"`+m[1]+`"`) {
				t.Errorf("%s: the fallback link of the region does not lead to %s: %s", path, m[1], line)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 5 {
		t.Fatalf("found %d live regions in the views, want at least 5", found)
	}
}

// TestFallbackLinkRendered: the loading state renders the link itself.
func TestFallbackLinkRendered(t *testing.T) {
	a := newTestApp(t)
	a.connectedToVapi()
	_, body := a.get("/vapi")
	links := map[string]bool{}
	for _, m := range hrefAttr.FindAllStringSubmatch(body, -1) {
		links[m[1]] = true
	}
	for _, p := range []string{"/fragments/vapi/settings", "/fragments/vapi/changes"} {
		if !links[p] {
			t.Errorf("/vapi has no link to %s:\n%s", p, body)
		}
	}
	if !strings.Contains(body, "Show Vapi settings without live loading") {
		t.Errorf("the fallback link does not say what it shows:\n%s", body)
	}
}
