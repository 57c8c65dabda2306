package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// cmdHashPassword prints the bcrypt hash of a password for the web
// config's basic_auth_users. On a terminal it asks twice without echo;
// otherwise it reads one line from stdin, so a script can pipe it and
// the password never appears in argv (ps, shell history).
func cmdHashPassword(stdin io.Reader, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", 10, "bcrypt `cost` (4-31; each step doubles the time; 10 is htpasswd's default)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lvsmon hash-password [--cost N] < password\n\nPrints the bcrypt hash to put under basic_auth_users in the --web.config.file.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintln(stderr, "lvsmon hash-password: the password is read from stdin, never from the command line")
		return errUsage
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		fmt.Fprintf(stderr, "lvsmon hash-password: --cost %d: want %d-%d\n", *cost, bcrypt.MinCost, bcrypt.MaxCost)
		return errUsage
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), *cost)
	if err != nil {
		return fmt.Errorf("hashing: %w", err)
	}
	fmt.Fprintln(stdout, string(h))
	return nil
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("reading the password: %w", err)
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(a))
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

// checkPassword refuses what bcrypt cannot take: nothing, or more than
// its 72 bytes (the rest would be ignored without a word).
func checkPassword(pw string) (string, error) {
	switch {
	case pw == "":
		return "", errors.New("empty password")
	case len(pw) > 72:
		return "", fmt.Errorf("the password is %d bytes; bcrypt uses only the first 72", len(pw))
	}
	return pw, nil
}
