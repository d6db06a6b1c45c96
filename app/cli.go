package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ava/console/services"
)

// userCreate implements `ava user create --email EMAIL --password-stdin`.
func userCreate(args []string, stdin io.Reader, stdout, _ io.Writer, getenv env) error {
	fs := newFlags("user create")
	email := fs.String("email", "", "the owner's email")
	fromStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" || !*fromStdin {
		return usageError{"user create: --email and --password-stdin are required"}
	}
	password, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read password: %w", err)
	}
	password = strings.TrimRight(password, "\r\n")

	ctx := context.Background()
	_, db, accounts, err := open(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	u, err := accounts.CreateOwner(ctx, *email, password, false)
	if err != nil {
		return errors.New(services.ErrorMessage(err))
	}
	_, err = fmt.Fprintf(stdout, "created owner %s (account %d)\n", u.Email, u.AccountID)
	return err
}

// tokenCreate implements `ava token create --email EMAIL --name NAME`; the
// token is the last line of stdout, the only time it is shown.
func tokenCreate(args []string, stdout, _ io.Writer, getenv env) error {
	fs := newFlags("token create")
	email := fs.String("email", "", "the owner's email")
	name := fs.String("name", "", "what the token is for")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" || *name == "" {
		return usageError{"token create: --email and --name are required"}
	}
	ctx := context.Background()
	_, db, accounts, err := open(ctx, getenv)
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }()
	u, _, err := db.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(*email)))
	if err != nil {
		if services.ErrorCode(err) == services.ENOTFOUND {
			return fmt.Errorf("no owner with email %s", *email)
		}
		return err
	}
	plain, _, err := accounts.CreateToken(ctx, u.ID, *name)
	if err != nil {
		return errors.New(services.ErrorMessage(err))
	}
	_, err = fmt.Fprintf(stdout, "API token %q for %s (shown once, store it now):\n%s\n", strings.TrimSpace(*name), u.Email, plain)
	return err
}
