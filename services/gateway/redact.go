package gateway

import (
	"net/url"
	"regexp"
	"strings"
)

// mask stands for a secret in logs and errors.
const mask = "xxxxx"

// userInfoPart matches the user part of a URL that may not parse ("scheme://user:pw@"),
// up to its last '@': a password may hold any character.
var userInfoPart = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://)(.*)@`)

// redactURLs returns a URL, or a comma-separated list of them (as NATS_URL may be), fit
// for a log line: a password is masked, and so is a user part without a password, which
// NATS reads as a token ("nats://s3cr3t@host"). A URL that does not parse keeps no user
// part at all.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = redactURL(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return userInfoPart.ReplaceAllString(raw, "${1}"+mask+"@")
	}
	if u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), mask)
	} else {
		u.User = url.User(mask)
	}
	return u.String()
}

// schemelessUserInfo matches the password of "user:password@host" without a scheme.
var schemelessUserInfo = regexp.MustCompile(`^[^:/?#@\s]+:(.*)@`)

// keyValuePassword matches the password of a key=value connection string.
var keyValuePassword = regexp.MustCompile(`(?:^|\s)(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// secretsOf returns the secrets raw holds, as they may be written in an error: the
// password of each URL in a comma-separated list (raw and decoded), or with tokens (NATS
// URLs) its user part when it has no password, the password parameters of a connection
// URL, and the password of a key=value string.
func secretsOf(raw string, tokens bool) []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
			if d, err := url.PathUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	for _, m := range keyValuePassword.FindAllStringSubmatch(raw, -1) {
		add(m[1])
		add(strings.Trim(m[1], "'"))
	}
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if m := schemelessUserInfo.FindStringSubmatch(p); m != nil && !strings.Contains(p, "://") {
			add(m[1]) // "user:password@host", written without a scheme
		}
		if m := userInfoPart.FindStringSubmatch(p); m != nil {
			user, pw, has := strings.Cut(m[2], ":")
			if has {
				add(pw)
			} else if tokens {
				add(user)
			}
		}
		if u, err := url.Parse(p); err == nil {
			q := u.Query()
			add(q.Get("password"))
			add(q.Get("sslpassword"))
		}
	}
	return out
}

// configSecrets are the secrets of cfg's connection settings: the database's password,
// NATS's password or token, those of the sources' base URLs.
func configSecrets(cfg Config) []string {
	out := append(secretsOf(cfg.DatabaseURL, false), secretsOf(cfg.NATSURL, true)...)
	for _, src := range cfg.Sources {
		out = append(out, secretsOf(src.URL, false)...)
	}
	return out
}

// redactedError is an error whose message has its secrets masked; it still wraps the
// original for errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// scrub masks every secret in the message of err (nil stays nil): the errors of the
// libraries the gateway calls may quote a URL as it was given.
func scrub(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, mask)
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
