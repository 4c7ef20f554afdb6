package main

// The quick client verbs: get, put, del, members, status. They speak to the
// cluster only through clientv3, so they work the same against etcd.
//
// Each verb is three layers: cobra plumbing (flags, argument checks that fail
// with usagef before anything is dialed), a run function over a one-method
// interface that clientv3 satisfies (so tests use fakes), and a pure writer
// that formats the answer.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func init() {
	subcommands = append(subcommands, newGetCmd, newPutCmd, newDelCmd, newMembersCmd, newStatusCmd)
}

const (
	defaultEndpoints = "127.0.0.1:2379"
	// endpointsEnv overrides the default of --endpoints; the flag wins.
	endpointsEnv = "CONCORD_ENDPOINTS"
)

// connFlags are the flags that say how to reach the cluster and as whom:
// etcdctl's global connection flags, under the same names and with the same
// meanings, on every client verb.
type connFlags struct {
	endpoints   string
	dialTimeout time.Duration

	// user is "name" or "name:password"; with --password it is the name
	// verbatim (so a name may contain a colon), as in etcdctl.
	user     string
	password string

	cacert, cert, key  string
	insecureSkipVerify bool
	// insecureTransport is etcdctl's default-true switch: plain gRPC unless
	// a TLS flag or an https:// endpoint asks for TLS.
	insecureTransport bool

	// prompt reads passwords from the command's standard input; made on
	// first use and shared, so that a verb asking for two passwords (user
	// add with --user NAME) reads both from one buffered stream.
	prompt *prompter
}

func (f *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoints, "endpoints", defaultEndpoints,
		"comma-separated client endpoints (host:port or URL); default from $"+endpointsEnv+" when set")
	fs.DurationVar(&f.dialTimeout, "dial-timeout", 5*time.Second, "timeout for establishing a connection")
	fs.StringVar(&f.user, "user", "", "log in as NAME or NAME:PASSWORD (the password is asked for when not given)")
	fs.StringVar(&f.password, "password", "", "the password of --user, which then is the name alone")
	fs.StringVar(&f.cacert, "cacert", "", "CA bundle that verifies the servers' TLS certificates (implies TLS)")
	fs.StringVar(&f.cert, "cert", "", "TLS client certificate file (with --key; implies TLS)")
	fs.StringVar(&f.key, "key", "", "TLS client key file (with --cert)")
	fs.BoolVar(&f.insecureSkipVerify, "insecure-skip-tls-verify", false,
		"use TLS without verifying the server's certificate (for tests only)")
	fs.BoolVar(&f.insecureTransport, "insecure-transport", true, "plain connections unless a TLS flag or an https:// endpoint asks for TLS; false forces TLS")
}

// resolve returns the endpoint list: the flag if it was given, else
// $CONCORD_ENDPOINTS if set, else the default. Errors are usage errors.
func (f *connFlags) resolve(fs *pflag.FlagSet) ([]string, error) {
	raw := f.endpoints
	if env := os.Getenv(endpointsEnv); env != "" && !fs.Changed("endpoints") {
		raw = env
	}
	var eps []string
	for ep := range strings.SplitSeq(raw, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, usagef("--endpoints: no endpoint in %q", raw)
	}
	if f.dialTimeout <= 0 {
		return nil, usagef("--dial-timeout must be positive, got %v", f.dialTimeout)
	}
	return eps, nil
}

// credentials reads --user and --password the way etcdctl does. ask is true
// when --user names no password, which is then asked for at dial time.
// Every error is a usage error, and none contains the password.
func (f *connFlags) credentials(fs *pflag.FlagSet) (name, password string, ask bool, err error) {
	if fs.Changed("password") && f.password == "" {
		return "", "", false, usagef("--password: empty password")
	}
	if f.user == "" {
		if fs.Changed("user") {
			return "", "", false, usagef("--user: empty user name")
		}
		if f.password != "" {
			return "", "", false, usagef("--password needs --user")
		}
		return "", "", false, nil
	}
	if f.password != "" {
		return f.user, f.password, false, nil
	}
	name, password, hasPassword := strings.Cut(f.user, ":")
	switch {
	case name == "":
		return "", "", false, usagef("--user: empty user name")
	case !hasPassword:
		return name, "", true, nil
	case password == "":
		// clientv3 would silently skip authentication for an empty
		// password, and the server would answer "user name is empty".
		return "", "", false, usagef("--user %s: empty password", name)
	}
	return name, password, false, nil
}

// endpointScheme is the transport an endpoint's URL scheme demands:
// "tls" for https:// and unixs://, "plain" for http:// and unix://, "" for
// a bare host:port, which follows the flags.
func endpointScheme(ep string) string {
	scheme, _, ok := strings.Cut(ep, "://")
	if !ok {
		return ""
	}
	switch scheme {
	case "https", "unixs":
		return "tls"
	case "http", "unix":
		return "plain"
	}
	return ""
}

// tlsConfig decides between plain gRPC and TLS as etcdctl does (TLS when a
// TLS flag is set, --insecure-transport=false, or an endpoint is https://)
// and loads the files now, so a missing or bad file is a usage error
// before anything is dialed. nil means plain.
func (f *connFlags) tlsConfig(fs *pflag.FlagSet, eps []string) (*tls.Config, error) {
	for _, name := range []string{"cacert", "cert", "key"} {
		if fs.Changed(name) && fs.Lookup(name).Value.String() == "" {
			return nil, usagef("--%s: empty file name", name)
		}
	}
	if (f.cert == "") != (f.key == "") {
		return nil, usagef("--cert and --key must be given together")
	}
	schemes := map[string]string{}
	for _, ep := range eps {
		if s := endpointScheme(ep); s != "" {
			schemes[s] = ep
		}
	}
	if len(schemes) > 1 {
		return nil, usagef("--endpoints: %s and %s mix TLS and plain endpoints", schemes["tls"], schemes["plain"])
	}
	flagged := f.cacert != "" || f.cert != "" || f.insecureSkipVerify || !f.insecureTransport
	if plain, ok := schemes["plain"]; ok {
		if flagged {
			return nil, usagef("--endpoints: %s is plain http, but TLS flags are given (use https://)", plain)
		}
		return nil, nil
	}
	if !flagged && schemes["tls"] == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.insecureSkipVerify}
	if f.cacert != "" {
		pem, err := os.ReadFile(f.cacert)
		if err != nil {
			return nil, usagef("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--cacert %s: no PEM certificate in the file", f.cacert)
		}
		cfg.RootCAs = pool
	}
	if f.cert != "" {
		pair, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return nil, usagef("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// dialer validates the connection flags (usage errors, before anything is
// dialed or asked) and returns what opens this command's clients.
func (f *connFlags) dialer(cmd *cobra.Command) (*dialer, error) {
	fs := cmd.Flags()
	eps, err := f.resolve(fs)
	if err != nil {
		return nil, err
	}
	name, password, ask, err := f.credentials(fs)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := f.tlsConfig(fs, eps)
	if err != nil {
		return nil, err
	}
	d := &dialer{
		cfg: clientv3.Config{
			Endpoints:   eps,
			DialTimeout: f.dialTimeout,
			TLS:         tlsCfg,
			Username:    name,
			Password:    password,
			// clientv3 logs retries and reconnects at info level on
			// stderr, which would interleave with our output.
			Logger: zap.NewNop(),
		},
	}
	if ask {
		d.ask = f.prompter(cmd)
	}
	return d, nil
}

// prompter returns the command's password reader.
func (f *connFlags) prompter(cmd *cobra.Command) *prompter {
	if f.prompt == nil {
		f.prompt = newPrompter(cmd.InOrStdin(), cmd.ErrOrStderr())
	}
	return f.prompt
}

// connect validates the flags and opens one client over every endpoint.
func (f *connFlags) connect(cmd *cobra.Command) (*clientv3.Client, error) {
	d, err := f.dialer(cmd)
	if err != nil {
		return nil, err
	}
	return d.dial()
}

// dialer opens clients that all share one validated setup: endpoints, TLS
// and credentials. It is not safe for concurrent use.
type dialer struct {
	cfg clientv3.Config
	// ask, when set, supplies the password --user did not name; it is asked
	// once, at the first dial, after the verb's own prompts.
	ask *prompter
}

// endpoints returns the endpoints the flags named.
func (d *dialer) endpoints() []string { return slices.Clone(d.cfg.Endpoints) }

// dial opens a client over every endpoint.
func (d *dialer) dial() (*clientv3.Client, error) { return d.dialTo(d.cfg.Endpoints) }

// dialTo opens a client over eps with the shared TLS and credentials.
// clientv3 connects lazily, so an unreachable cluster shows up as the first
// call timing out, not here, except with credentials: clientv3 logs in at
// once, so a wrong password or an unreachable cluster fails here.
func (d *dialer) dialTo(eps []string) (*clientv3.Client, error) {
	if err := d.askPassword(); err != nil {
		return nil, err
	}
	cfg := d.cfg
	cfg.Endpoints = eps
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", strings.Join(eps, ","), err)
	}
	return c, nil
}

// askPassword asks for the password --user did not name, once (bench
// dials many clients with it).
func (d *dialer) askPassword() error {
	if d.ask == nil {
		return nil
	}
	pw, err := d.ask.ask("Password: ")
	if err != nil {
		return err
	}
	if pw == "" {
		return usagef("empty password for user %s", d.cfg.Username)
	}
	d.cfg.Password, d.ask = pw, nil
	return nil
}

// prompter reads passwords, one per line, from a command's standard input,
// with the prompt on stderr. When the input is a terminal its echo is off
// while the password is typed (by stty, to stay within the standard
// library), as etcdctl's prompt does.
type prompter struct {
	in   *bufio.Reader
	tty  *os.File // the terminal, when the input is one
	errw io.Writer
}

func newPrompter(in io.Reader, errw io.Writer) *prompter {
	p := &prompter{in: bufio.NewReader(in), errw: errw}
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		p.tty = f
	}
	return p
}

var errNoPassword = errors.New("no password on standard input")

// ask prints prompt and returns the next line without its line ending.
// Errors are usage errors: a password was needed and not supplied.
func (p *prompter) ask(prompt string) (string, error) {
	fmt.Fprint(p.errw, prompt)
	if p.tty != nil && p.stty("-echo") == nil {
		// Ctrl-C while echo is off must not leave the terminal silent.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			select {
			case <-sig:
				p.stty("echo")
				fmt.Fprintln(p.errw)
				os.Exit(130)
			case <-done:
			}
		}()
		defer func() {
			signal.Stop(sig)
			close(done)
			p.stty("echo")
			fmt.Fprintln(p.errw)
		}()
	}
	return p.read()
}

// read returns the next line without its line ending and without a prompt
// (etcdctl's --interactive=false reads the password from stdin silently).
func (p *prompter) read() (string, error) {
	line, err := p.in.ReadString('\n')
	if err != nil && (!errors.Is(err, io.EOF) || line == "") {
		if errors.Is(err, io.EOF) {
			err = errNoPassword
		}
		return "", usageError{fmt.Errorf("reading password: %w", err)}
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (p *prompter) stty(arg string) error {
	c := exec.Command("stty", arg)
	c.Stdin = p.tty
	return c.Run()
}

// clientFlags are connFlags plus the per-command deadline of the quick verbs.
type clientFlags struct {
	conn           connFlags
	commandTimeout time.Duration
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	f.conn.register(fs)
	fs.DurationVar(&f.commandTimeout, "command-timeout", 5*time.Second, "timeout for running the command")
}

// dialer validates the flags (usage errors) without dialing or asking
// for anything.
func (f *clientFlags) dialer(cmd *cobra.Command) (*dialer, error) {
	if f.commandTimeout <= 0 {
		return nil, usagef("--command-timeout must be positive, got %v", f.commandTimeout)
	}
	return f.conn.dialer(cmd)
}

// connect validates the flags (usage errors) and dials. The caller closes the
// client.
func (f *clientFlags) connect(cmd *cobra.Command) (*clientv3.Client, error) {
	d, err := f.dialer(cmd)
	if err != nil {
		return nil, err
	}
	return d.dial()
}

// run connects, gives f the client and a context bounded by
// --command-timeout, and closes the client afterwards.
func (f *clientFlags) run(cmd *cobra.Command, do func(ctx context.Context, c *clientv3.Client) error) error {
	d, err := f.dialer(cmd)
	if err != nil {
		return err
	}
	return f.runOn(cmd, d, do)
}

// runOn is run with flags already validated, for verbs that read input
// (a new password) between validating and dialing.
func (f *clientFlags) runOn(cmd *cobra.Command, d *dialer, do func(ctx context.Context, c *clientv3.Client) error) error {
	c, err := d.dial()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(cmd.Context(), f.commandTimeout)
	defer cancel()
	return do(ctx, c)
}

// argsBetween accepts between lo and hi positional arguments and reports
// anything else as a usage error (cobra's own validators return plain errors,
// which would exit 1).
func argsBetween(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return usagef("%s: wrong number of arguments (%d); usage: %s", cmd.Name(), len(args), cmd.UseLine())
		}
		return nil
	}
}

// ---- get ----

type getOptions struct {
	prefix         bool
	rev            int64
	limit          int64
	keysOnly       bool
	printValueOnly bool
}

func (o getOptions) validate(key string) error {
	switch {
	case key == "" && !o.prefix:
		return usagef(`get: empty key (use --prefix "" for every key)`)
	case o.rev < 0:
		return usagef("get: --rev must not be negative, got %d", o.rev)
	case o.limit < 0:
		return usagef("get: --limit must not be negative, got %d", o.limit)
	case o.keysOnly && o.printValueOnly:
		return usagef("get: --keys-only and --print-value-only exclude each other")
	}
	return nil
}

func (o getOptions) opOptions() []clientv3.OpOption {
	var opts []clientv3.OpOption
	if o.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}
	if o.limit > 0 {
		opts = append(opts, clientv3.WithLimit(o.limit))
	}
	if o.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	return opts
}

// writeKVs prints etcdctl's "simple" format: the key line, then the value
// line, for each kv; --keys-only drops the value lines and --print-value-only
// the key lines.
func writeKVs(w io.Writer, kvs []*mvccpb.KeyValue, o getOptions) error {
	for _, kv := range kvs {
		if !o.printValueOnly {
			if _, err := fmt.Fprintf(w, "%s\n", kv.Key); err != nil {
				return err
			}
		}
		if !o.keysOnly {
			if _, err := fmt.Fprintf(w, "%s\n", kv.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

type getter interface {
	Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error)
}

func runGet(ctx context.Context, kv getter, w io.Writer, key string, o getOptions) error {
	resp, err := kv.Get(ctx, key, o.opOptions()...)
	if err != nil {
		return fmt.Errorf("get %q: %w", key, err)
	}
	return writeKVs(w, resp.Kvs, o)
}

func newGetCmd() *cobra.Command {
	var (
		cf clientFlags
		o  getOptions
	)
	cmd := &cobra.Command{
		Use:   "get KEY",
		Short: "Read a key or a prefix (prints key and value lines, like etcdctl)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(args[0]); err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runGet(ctx, c, cmd.OutOrStdout(), args[0], o)
			})
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&o.prefix, "prefix", false, "read every key with KEY as prefix")
	fs.Int64Var(&o.rev, "rev", 0, "read at this revision (0 = latest)")
	fs.Int64Var(&o.limit, "limit", 0, "return at most this many keys (0 = no limit)")
	fs.BoolVar(&o.keysOnly, "keys-only", false, "print keys only")
	fs.BoolVar(&o.printValueOnly, "print-value-only", false, "print values only")
	return cmd
}

// ---- put ----

type putter interface {
	Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error)
}

func runPut(ctx context.Context, kv putter, w io.Writer, key, val string, opts ...clientv3.OpOption) error {
	if _, err := kv.Put(ctx, key, val, opts...); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	_, err := fmt.Fprintln(w, "OK")
	return err
}

func newPutCmd() *cobra.Command {
	var (
		cf    clientFlags
		lease string
	)
	cmd := &cobra.Command{
		Use:   "put KEY VALUE",
		Short: "Write a key (prints OK)",
		Args:  argsBetween(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return usagef("put: empty key")
			}
			var opts []clientv3.OpOption
			if lease != "" {
				id, err := parseLeaseID(lease) // lease.go
				if err != nil {
					return err
				}
				opts = append(opts, clientv3.WithLease(id))
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runPut(ctx, c, cmd.OutOrStdout(), args[0], args[1], opts...)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().StringVar(&lease, "lease", "", "attach the key to this lease (hex id)")
	return cmd
}

// ---- del ----

type deleter interface {
	Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error)
}

func delOpOptions(prefix bool) []clientv3.OpOption {
	if prefix {
		return []clientv3.OpOption{clientv3.WithPrefix()}
	}
	return nil
}

func runDel(ctx context.Context, kv deleter, w io.Writer, key string, prefix bool) error {
	resp, err := kv.Delete(ctx, key, delOpOptions(prefix)...)
	if err != nil {
		return fmt.Errorf("del %q: %w", key, err)
	}
	_, err = fmt.Fprintln(w, resp.Deleted)
	return err
}

func newDelCmd() *cobra.Command {
	var (
		cf     clientFlags
		prefix bool
	)
	cmd := &cobra.Command{
		Use:   "del KEY",
		Short: "Delete a key or a prefix (prints the number deleted)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" && !prefix {
				return usagef(`del: empty key (use --prefix "" for every key)`)
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runDel(ctx, c, cmd.OutOrStdout(), args[0], prefix)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&prefix, "prefix", false, "delete every key with KEY as prefix")
	return cmd
}

// ---- members ----

func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

// memberName shows a member that was added but has not started (it has no
// name yet) as such instead of as a blank cell.
func memberName(m *pb.Member) string {
	if m.Name == "" {
		return "(unstarted)"
	}
	return m.Name
}

// writeTable lays out the tab-separated lines fill writes, and strips the
// padding tabwriter leaves after an empty last cell.
func writeTable(w io.Writer, fill func(tw io.Writer)) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	fill(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	for line := range strings.Lines(buf.String()) {
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

func writeMembers(w io.Writer, members []*pb.Member) error {
	return writeTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "ID\tNAME\tPEER ADDRS\tCLIENT ADDRS\tIS LEARNER")
		for _, m := range members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\n", hexID(m.ID), memberName(m),
				strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.IsLearner)
		}
	})
}

type memberLister interface {
	MemberList(ctx context.Context, opts ...clientv3.OpOption) (*clientv3.MemberListResponse, error)
}

func runMembers(ctx context.Context, cl memberLister, w io.Writer) error {
	resp, err := cl.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	return writeMembers(w, resp.Members)
}

func newMembersCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the cluster's members",
		Args:  argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runMembers(ctx, c, cmd.OutOrStdout())
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

// ---- status ----

// statusTarget is one endpoint to ask for Status. memberID and name are known
// only when the target came from the member list.
type statusTarget struct {
	memberID uint64
	name     string
	endpoint string
	// cannotAsk, when set, says why the target is not asked at all (a member
	// that has not started has no client URL).
	cannotAsk error
}

type statusRow struct {
	statusTarget
	resp *clientv3.StatusResponse
	err  error
}

var errNoClientURL = errors.New("member has not started: no client URL")

// statusTargets picks the first client URL of every member, or, when the
// member list is unavailable (members == nil), the given endpoints.
func statusTargets(members []*pb.Member, fallback []string) []statusTarget {
	if members == nil {
		ts := make([]statusTarget, len(fallback))
		for i, ep := range fallback {
			ts[i] = statusTarget{endpoint: ep}
		}
		return ts
	}
	ts := make([]statusTarget, 0, len(members))
	for _, m := range members {
		t := statusTarget{memberID: m.ID, name: memberName(m)}
		if len(m.ClientURLs) == 0 {
			t.cannotAsk = errNoClientURL
		} else {
			t.endpoint = m.ClientURLs[0]
		}
		ts = append(ts, t)
	}
	return ts
}

type statuser interface {
	Status(ctx context.Context, endpoint string) (*clientv3.StatusResponse, error)
}

// collectStatus asks every target in parallel, each with its own timeout, so
// one dead member costs one timeout rather than one per member.
func collectStatus(ctx context.Context, s statuser, targets []statusTarget, timeout time.Duration) []statusRow {
	rows := make([]statusRow, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		rows[i].statusTarget = t
		if t.cannotAsk != nil {
			rows[i].err = t.cannotAsk
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			rows[i].resp, rows[i].err = s.Status(ctx, t.endpoint)
		})
	}
	wg.Wait()
	return rows
}

// writeStatus prints one row per target; a failed one has dashes in the
// numeric columns and the error in ERRORS. ERRORS of a healthy member lists its
// alarms, if any.
func writeStatus(w io.Writer, rows []statusRow) error {
	return writeTable(w, func(tw io.Writer) {
		fmt.Fprintln(tw, "ID\tNAME\tENDPOINT\tLEADER\tTERM\tAPPLIED\tREVISION\tVERSION\tERRORS")
		for _, r := range rows {
			fmt.Fprintln(tw, statusLine(r))
		}
	})
}

func statusLine(r statusRow) string {
	name := cmp.Or(r.name, "-")
	endpoint := cmp.Or(r.endpoint, "-")
	if r.err != nil || r.resp == nil {
		id := "-"
		if r.memberID != 0 {
			id = hexID(r.memberID)
		}
		msg := "no response"
		if r.err != nil {
			msg = r.err.Error()
		}
		return fmt.Sprintf("%s\t%s\t%s\t-\t-\t-\t-\t-\t%s", id, name, endpoint, msg)
	}
	s := r.resp
	var memberID uint64
	var rev int64
	if s.Header != nil {
		memberID, rev = s.Header.MemberId, s.Header.Revision
	}
	return fmt.Sprintf("%s\t%s\t%s\t%t\t%d\t%d\t%d\t%s\t%s", hexID(memberID), name, endpoint,
		s.Leader != 0 && s.Leader == memberID, s.RaftTerm, s.RaftAppliedIndex, rev, s.Version,
		strings.Join(s.Errors, "; "))
}

// statusClient is what the status verb needs of a clientv3.Client.
type statusClient interface {
	memberLister
	statuser
}

// runStatus prints the table and then fails (exit 1) if any member could not
// be asked, so scripts notice an unhealthy cluster.
func runStatus(ctx context.Context, c statusClient, w io.Writer, eps []string, timeout time.Duration) error {
	var members []*pb.Member
	mctx, cancel := context.WithTimeout(ctx, timeout)
	resp, err := c.MemberList(mctx)
	cancel()
	if err == nil {
		members = resp.Members
		if members == nil {
			members = []*pb.Member{}
		}
	}
	rows := collectStatus(ctx, c, statusTargets(members, eps), timeout)
	if err := writeStatus(w, rows); err != nil {
		return err
	}
	failed := 0
	for _, r := range rows {
		if r.err != nil {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("status: %d of %d endpoints failed", failed, len(rows))
	}
	return nil
}

func newStatusCmd() *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every member's raft and store status",
		Long: "Status asks every member (found through the member list, or the --endpoints\n" +
			"if that fails) for its status. It exits 1 if any member could not be asked.",
		Args: argsBetween(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := cf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return runStatus(cmd.Context(), c, cmd.OutOrStdout(), c.Endpoints(), cf.commandTimeout)
		},
	}
	cf.register(cmd.Flags())
	return cmd
}
