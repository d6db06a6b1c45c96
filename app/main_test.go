package main

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

var testKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

func envOf(kv map[string]string) func(string) string {
	return func(k string) string { return kv[k] }
}

// cli runs one command line against a fresh database in a temp folder.
type cli struct {
	env map[string]string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dir := t.TempDir()
	return &cli{env: map[string]string{
		"AVA_SECRET_KEY": testKey,
		"DATABASE_URL":   "sqlite:" + dir + "/ava.db",
	}}
}

func (c *cli) run(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut, envOf(c.env))
	return code, out.String(), errOut.String()
}

func TestCLIUserAndTokenCreate(t *testing.T) {
	c := newCLI(t)
	code, out, errOut := c.run("correct horse battery\n", "user", "create", "--email", "ops@example.com", "--password-stdin")
	if code != 0 || !strings.Contains(out, "ops@example.com") {
		t.Fatalf("user create: %d %q %q", code, out, errOut)
	}
	code, _, errOut = c.run("correct horse battery\n", "user", "create", "--email", "ops@example.com", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "already exists") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("duplicate user: %d %q", code, errOut)
	}
	code, _, errOut = c.run("short\n", "user", "create", "--email", "new@example.com", "--password-stdin")
	if code != 1 || !strings.Contains(errOut, "Password must be") {
		t.Fatalf("short password: %d %q", code, errOut)
	}

	code, out, errOut = c.run("", "token", "create", "--email", "ops@example.com", "--name", "deploy")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(last, "ava_") || len(last) < 40 {
		t.Fatalf("token create: %d %q %q", code, out, errOut)
	}
	code, _, errOut = c.run("", "token", "create", "--email", "nobody@example.com", "--name", "x")
	if code != 1 || !strings.Contains(errOut, "no owner with email nobody@example.com") {
		t.Fatalf("unknown owner: %d %q", code, errOut)
	}
}

func TestCLIBadArgumentsExit2(t *testing.T) {
	c := newCLI(t)
	for _, args := range [][]string{
		{"frobnicate"},
		{"serve", "now"},
		{"user"},
		{"user", "delete"},
		{"user", "create", "--email", "a@example.com"},
		{"user", "create", "--password-stdin"},
		{"user", "create", "--nope"},
		{"token", "create", "--email", "a@example.com"},
		{"token", "create", "--name", "x", "extra", "--email", "a@example.com"},
	} {
		code, _, errOut := c.run("", args...)
		if code != exitUsage || !strings.Contains(errOut, "Usage:") {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

func TestCLIConfigErrorIsOneLine(t *testing.T) {
	c := newCLI(t)
	c.env["UPSTREAM_TIMEOUT"] = "forever"
	code, _, errOut := c.run("", "token", "create", "--email", "a@example.com", "--name", "x")
	if code != 1 || !strings.Contains(errOut, "UPSTREAM_TIMEOUT") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	delete(c.env, "UPSTREAM_TIMEOUT")
	delete(c.env, "AVA_SECRET_KEY")
	code, _, errOut = c.run("")
	if code != 1 || !strings.HasPrefix(errOut, "ava: AVA_SECRET_KEY: required in production") {
		t.Fatalf("production without a key: exit %d, stderr %q", code, errOut)
	}
}
