package main

// The auth verbs: auth enable|disable|status, user add|get|list|delete|
// passwd|grant-role|revoke-role and role add|get|list|delete|
// grant-permission|revoke-permission. Syntax, password prompts and output
// are etcdctl's (3.6, simple format), so a person or script used to etcdctl
// is at home; they speak only clientv3's Auth API, so they work against
// etcd too. Known, deliberate differences from etcdctl: extra positional
// arguments and an empty KEY without --prefix/--from-key are usage errors
// (etcdctl ignores the first and grants the single key "\x00"), an empty
// KEY with an ENDKEY means [\x00, ENDKEY) (etcdctl drops the ENDKEY), and
// --interactive=false reads a whole line (etcdctl reads one word).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/authpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func init() { subcommands = append(subcommands, newAuthCmd, newUserCmd, newRoleCmd) }

// rootName is the user and the role etcd's auth requires before it can be
// enabled.
const rootName = "root"

// needSubcommand is the RunE of a verb group called without a subcommand.
func needSubcommand(list string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		return usagef("%s needs a subcommand: %s", cmd.Name(), list)
	}
}

// ---- auth ----

// authSwitch is what the auth verbs need of clientv3.Auth.
type authSwitch interface {
	AuthEnable(ctx context.Context) (*clientv3.AuthEnableResponse, error)
	AuthDisable(ctx context.Context) (*clientv3.AuthDisableResponse, error)
	AuthStatus(ctx context.Context) (*clientv3.AuthStatusResponse, error)
	RoleAdd(ctx context.Context, name string) (*clientv3.AuthRoleAddResponse, error)
	UserGrantRole(ctx context.Context, user string, role string) (*clientv3.AuthUserGrantRoleResponse, error)
}

// runAuthEnable enables auth. Like etcdctl, when the root user exists but
// lacks the root role it creates the role (if missing), grants it and tries
// once more; a missing root user is the server's error to report.
func runAuthEnable(ctx context.Context, c authSwitch, w io.Writer) error {
	_, err := c.AuthEnable(ctx)
	if errors.Is(err, rpctypes.ErrRootRoleNotExist) {
		if _, err = c.RoleAdd(ctx, rootName); err != nil && !errors.Is(err, rpctypes.ErrRoleAlreadyExist) {
			return fmt.Errorf("auth enable: add role root: %w", err)
		}
		if _, err = c.UserGrantRole(ctx, rootName, rootName); err != nil {
			return fmt.Errorf("auth enable: grant role root to user root: %w", err)
		}
		_, err = c.AuthEnable(ctx)
	}
	if err != nil {
		return fmt.Errorf("auth enable: %w", err)
	}
	_, err = fmt.Fprintln(w, "Authentication Enabled")
	return err
}

func runAuthDisable(ctx context.Context, c authSwitch, w io.Writer) error {
	if _, err := c.AuthDisable(ctx); err != nil {
		return fmt.Errorf("auth disable: %w", err)
	}
	_, err := fmt.Fprintln(w, "Authentication Disabled")
	return err
}

func writeAuthStatus(w io.Writer, enabled bool, authRevision uint64) error {
	_, err := fmt.Fprintf(w, "Authentication Status: %t\nAuthRevision: %d\n", enabled, authRevision)
	return err
}

func runAuthStatus(ctx context.Context, c authSwitch, w io.Writer) error {
	resp, err := c.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("auth status: %w", err)
	}
	return writeAuthStatus(w, resp.Enabled, resp.AuthRevision)
}

func newAuthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Enable, disable or show authentication (like etcdctl auth)",
		Args:  argsBetween(0, 0),
		RunE:  needSubcommand("enable, disable or status"),
	}
	verb := func(use, short string, run func(context.Context, authSwitch, io.Writer) error) *cobra.Command {
		var cf clientFlags
		sub := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  argsBetween(0, 0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
					return run(ctx, c, cmd.OutOrStdout())
				})
			},
		}
		cf.register(sub.Flags())
		return sub
	}
	cmd.AddCommand(
		verb("enable", "Enable authentication (needs user root; grants it role root if missing)", runAuthEnable),
		verb("disable", "Disable authentication", runAuthDisable),
		verb("status", "Show whether authentication is enabled and the auth revision", runAuthStatus),
	)
	return cmd
}

// ---- passwords of new users ----

// passwordSource reads the new password of user add and user passwd the way
// etcdctl does: interactive (the default) prompts twice and insists on a
// non-empty, matching answer; --interactive=false reads one line silently.
type passwordSource struct {
	p           *prompter
	interactive bool
}

func (s passwordSource) read(name string) (string, error) {
	if !s.interactive {
		return s.p.read()
	}
	first, err := s.p.ask(fmt.Sprintf("Password of %s: ", name))
	if err != nil {
		return "", err
	}
	if first == "" {
		return "", usagef("empty password")
	}
	second, err := s.p.ask(fmt.Sprintf("Type password of %s again for confirmation: ", name))
	if err != nil {
		return "", err
	}
	if first != second {
		return "", usagef("given passwords are different")
	}
	return first, nil
}

// newUser is what user add sends.
type newUser struct {
	name       string
	password   string
	noPassword bool
	// ask is set when the password must still be read (no "name:password",
	// no --new-user-password, no --no-password).
	ask bool
}

// parseUserAdd reads user add's argument and flags as etcdctl does:
// --no-password and --new-user-password take ARG as the name verbatim;
// otherwise "name:password" splits at the first colon.
func parseUserAdd(arg string, noPassword bool, flagPassword string) (newUser, error) {
	switch {
	case noPassword && flagPassword != "":
		return newUser{}, usagef("user add: --no-password and --new-user-password exclude each other")
	case noPassword:
		if arg == "" {
			return newUser{}, usagef("user add: empty user name is not allowed")
		}
		return newUser{name: arg, noPassword: true}, nil
	case flagPassword != "":
		if arg == "" {
			return newUser{}, usagef("user add: empty user name is not allowed")
		}
		return newUser{name: arg, password: flagPassword}, nil
	}
	name, password, ok := strings.Cut(arg, ":")
	if name == "" {
		return newUser{}, usagef("user add: empty user name is not allowed")
	}
	return newUser{name: name, password: password, ask: !ok}, nil
}

// ---- user ----

// userAdmin is what the user verbs need of clientv3.Auth.
type userAdmin interface {
	UserAddWithOptions(ctx context.Context, name string, password string, opt *clientv3.UserAddOptions) (*clientv3.AuthUserAddResponse, error)
	UserDelete(ctx context.Context, name string) (*clientv3.AuthUserDeleteResponse, error)
	UserChangePassword(ctx context.Context, name string, password string) (*clientv3.AuthUserChangePasswordResponse, error)
	UserGrantRole(ctx context.Context, user string, role string) (*clientv3.AuthUserGrantRoleResponse, error)
	UserGet(ctx context.Context, name string) (*clientv3.AuthUserGetResponse, error)
	UserList(ctx context.Context) (*clientv3.AuthUserListResponse, error)
	UserRevokeRole(ctx context.Context, name string, role string) (*clientv3.AuthUserRevokeRoleResponse, error)
	RoleGet(ctx context.Context, role string) (*clientv3.AuthRoleGetResponse, error)
}

func runUserAdd(ctx context.Context, c userAdmin, w io.Writer, u newUser) error {
	if _, err := c.UserAddWithOptions(ctx, u.name, u.password, &clientv3.UserAddOptions{NoPassword: u.noPassword}); err != nil {
		return fmt.Errorf("user add %s: %w", u.name, err)
	}
	_, err := fmt.Fprintf(w, "User %s created\n", u.name)
	return err
}

func runUserDelete(ctx context.Context, c userAdmin, w io.Writer, name string) error {
	if _, err := c.UserDelete(ctx, name); err != nil {
		return fmt.Errorf("user delete %s: %w", name, err)
	}
	_, err := fmt.Fprintf(w, "User %s deleted\n", name)
	return err
}

func runUserPasswd(ctx context.Context, c userAdmin, w io.Writer, name, password string) error {
	if _, err := c.UserChangePassword(ctx, name, password); err != nil {
		return fmt.Errorf("user passwd %s: %w", name, err)
	}
	_, err := fmt.Fprintln(w, "Password updated")
	return err
}

func runUserGrantRole(ctx context.Context, c userAdmin, w io.Writer, user, role string) error {
	if _, err := c.UserGrantRole(ctx, user, role); err != nil {
		return fmt.Errorf("user grant-role %s %s: %w", user, role, err)
	}
	_, err := fmt.Fprintf(w, "Role %s is granted to user %s\n", role, user)
	return err
}

func runUserRevokeRole(ctx context.Context, c userAdmin, w io.Writer, user, role string) error {
	if _, err := c.UserRevokeRole(ctx, user, role); err != nil {
		return fmt.Errorf("user revoke-role %s %s: %w", user, role, err)
	}
	_, err := fmt.Fprintf(w, "Role %s is revoked from user %s\n", role, user)
	return err
}

// writeUser prints "User: NAME" and "Roles:" followed by " ROLE" for each
// role, as etcdctl does (so no roles prints a bare "Roles:").
func writeUser(w io.Writer, name string, roles []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "User: %s\nRoles:", name)
	for _, r := range roles {
		b.WriteString(" " + r)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// runUserGet prints the user, or with detail the user's name followed by,
// for each role, a blank line and what role get prints.
func runUserGet(ctx context.Context, c userAdmin, w io.Writer, name string, detail bool) error {
	resp, err := c.UserGet(ctx, name)
	if err != nil {
		return fmt.Errorf("user get %s: %w", name, err)
	}
	if !detail {
		return writeUser(w, name, resp.Roles)
	}
	if _, err := fmt.Fprintf(w, "User: %s\n", name); err != nil {
		return err
	}
	for _, role := range resp.Roles {
		r, err := c.RoleGet(ctx, role)
		if err != nil {
			return fmt.Errorf("user get %s: role %s: %w", name, role, err)
		}
		if _, err := fmt.Fprintln(w); err != nil {
			return err
		}
		if err := writeRole(w, role, r.Perm); err != nil {
			return err
		}
	}
	return nil
}

// writeNames prints one name a line (user list, role list).
func writeNames(w io.Writer, names []string) error {
	for _, n := range names {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

func runUserList(ctx context.Context, c userAdmin, w io.Writer) error {
	resp, err := c.UserList(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	return writeNames(w, resp.Users)
}

// userVerb builds a user or role verb over clientFlags that takes exactly n
// arguments and needs nothing read before dialing.
func userVerb(use, short string, n int, do func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  argsBetween(n, n),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return do(ctx, c, cmd.OutOrStdout(), args)
			})
		},
	}
	cf.register(cmd.Flags())
	return cmd
}

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, inspect and delete users and grant them roles (like etcdctl user)",
		Args:  argsBetween(0, 0),
		RunE:  needSubcommand("add, get, list, delete, passwd, grant-role or revoke-role"),
	}
	get := func() *cobra.Command {
		var detail bool
		c := userVerb("get NAME", "Show a user's roles (--detail: and their permissions)", 1,
			func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
				return runUserGet(ctx, c, w, args[0], detail)
			})
		c.Flags().BoolVar(&detail, "detail", false, "also print the permissions of each of the user's roles")
		return c
	}()
	cmd.AddCommand(newUserAddCmd(), get,
		userVerb("list", "List users", 0, func(ctx context.Context, c *clientv3.Client, w io.Writer, _ []string) error {
			return runUserList(ctx, c, w)
		}),
		userVerb("delete NAME", "Delete a user", 1, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runUserDelete(ctx, c, w, args[0])
		}),
		newUserPasswdCmd(),
		userVerb("grant-role USER ROLE", "Grant a role to a user", 2, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runUserGrantRole(ctx, c, w, args[0], args[1])
		}),
		userVerb("revoke-role USER ROLE", "Revoke a role from a user", 2, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runUserRevokeRole(ctx, c, w, args[0], args[1])
		}),
	)
	return cmd
}

func newUserAddCmd() *cobra.Command {
	var (
		cf           clientFlags
		interactive  bool
		noPassword   bool
		flagPassword string
	)
	cmd := &cobra.Command{
		Use:   "add NAME[:PASSWORD]",
		Short: "Add a user (asks for the password unless given)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := parseUserAdd(args[0], noPassword, flagPassword)
			if err != nil {
				return err
			}
			d, err := cf.dialer(cmd)
			if err != nil {
				return err
			}
			if u.ask {
				// Before dialing, which may ask for --user's password:
				// etcdctl reads the new user's password first.
				src := passwordSource{p: cf.conn.prompter(cmd), interactive: interactive}
				if u.password, err = src.read(u.name); err != nil {
					return err
				}
			}
			return cf.runOn(cmd, d, func(ctx context.Context, c *clientv3.Client) error {
				return runUserAdd(ctx, c, cmd.OutOrStdout(), u)
			})
		},
	}
	cf.register(cmd.Flags())
	fs := cmd.Flags()
	fs.BoolVar(&interactive, "interactive", true, "read the password from the terminal, twice (false: one line from stdin)")
	fs.StringVar(&flagPassword, "new-user-password", "", "supply the password on the command line")
	fs.BoolVar(&noPassword, "no-password", false, "a user that cannot log in with a password (TLS client certificate CN only)")
	return cmd
}

func newUserPasswdCmd() *cobra.Command {
	var (
		cf          clientFlags
		interactive bool
	)
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password (asks for it)",
		Args:  argsBetween(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := cf.dialer(cmd)
			if err != nil {
				return err
			}
			src := passwordSource{p: cf.conn.prompter(cmd), interactive: interactive}
			password, err := src.read(args[0])
			if err != nil {
				return err
			}
			return cf.runOn(cmd, d, func(ctx context.Context, c *clientv3.Client) error {
				return runUserPasswd(ctx, c, cmd.OutOrStdout(), args[0], password)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&interactive, "interactive", true, "read the password from the terminal, twice (false: one line from stdin)")
	return cmd
}

// ---- role ----

// roleAdmin is what the role verbs need of clientv3.Auth.
type roleAdmin interface {
	RoleAdd(ctx context.Context, name string) (*clientv3.AuthRoleAddResponse, error)
	RoleGrantPermission(ctx context.Context, name string, key, rangeEnd string, permType clientv3.PermissionType) (*clientv3.AuthRoleGrantPermissionResponse, error)
	RoleGet(ctx context.Context, role string) (*clientv3.AuthRoleGetResponse, error)
	RoleList(ctx context.Context) (*clientv3.AuthRoleListResponse, error)
	RoleRevokePermission(ctx context.Context, role string, key, rangeEnd string) (*clientv3.AuthRoleRevokePermissionResponse, error)
	RoleDelete(ctx context.Context, role string) (*clientv3.AuthRoleDeleteResponse, error)
}

// openEnd is the range end etcd reads as "every key from KEY on".
const openEnd = "\x00"

// permRange turns grant-permission's and revoke-permission's KEY [ENDKEY]
// and flags into the range sent: a single key (empty end), [KEY, ENDKEY),
// the prefix KEY (--prefix), or KEY and every key after it (--from-key,
// end "\x00"). The empty key stands for the first key, "\x00", because etcd
// keeps permissions as intervals; with --prefix or --from-key it covers
// every key.
func permRange(args []string, prefix, fromKey bool) (key, end string, err error) {
	key = args[0]
	switch {
	case prefix && fromKey:
		return "", "", usagef("--from-key and --prefix flags are mutually exclusive")
	case len(args) == 2 && prefix:
		return "", "", usagef("unexpected endkey argument with --prefix flag")
	case len(args) == 2 && fromKey:
		return "", "", usagef("unexpected endkey argument with --from-key flag")
	case key == "" && (prefix || fromKey):
		return "\x00", openEnd, nil
	case key == "" && len(args) == 1:
		return "", "", usagef(`empty key (use --prefix "" for every key)`)
	case key == "":
		key = "\x00"
	}
	switch {
	case len(args) == 2:
		end = args[1]
	case prefix:
		end = clientv3.GetPrefixRangeEnd(key)
	case fromKey:
		end = openEnd
	}
	return key, end, nil
}

// writeRole prints role get's text as etcdctl does: read permissions, then
// write permissions, each a single key or a half-open range, "<open ended>"
// for an end of "\x00" and "(prefix KEY)" when the range is KEY's prefix.
// The root role, which has no permissions and needs none, prints as open
// ended.
func writeRole(w io.Writer, name string, perms []*authpb.Permission) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Role %s\n", name)
	if name == rootName && perms == nil {
		b.WriteString("KV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n")
		_, err := io.WriteString(w, b.String())
		return err
	}
	section := func(title string, want authpb.Permission_Type) {
		b.WriteString(title + "\n")
		for _, p := range perms {
			if p.PermType != want && p.PermType != authpb.READWRITE {
				continue
			}
			key, end := string(p.Key), string(p.RangeEnd)
			switch {
			case end == "":
				fmt.Fprintf(&b, "\t%s\n", key)
				continue
			case end == openEnd:
				fmt.Fprintf(&b, "\t[%s, <open ended>", key)
			default:
				fmt.Fprintf(&b, "\t[%s, %s)", key, end)
			}
			if key != "" && clientv3.GetPrefixRangeEnd(key) == end {
				fmt.Fprintf(&b, " (prefix %s)", key)
			}
			b.WriteString("\n")
		}
	}
	section("KV Read:", authpb.READ)
	section("KV Write:", authpb.WRITE)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeRevoked prints revoke-permission's confirmation; keyArg is the KEY
// as typed (etcdctl prints it, not the "\x00" it stands for).
func writeRevoked(w io.Writer, role, keyArg, end string) error {
	var err error
	switch end {
	case "":
		_, err = fmt.Fprintf(w, "Permission of key %s is revoked from role %s\n", keyArg, role)
	case openEnd:
		_, err = fmt.Fprintf(w, "Permission of range [%s, <open ended> is revoked from role %s\n", keyArg, role)
	default:
		_, err = fmt.Fprintf(w, "Permission of range [%s, %s) is revoked from role %s\n", keyArg, end, role)
	}
	return err
}

func runRoleAdd(ctx context.Context, c roleAdmin, w io.Writer, name string) error {
	if _, err := c.RoleAdd(ctx, name); err != nil {
		return fmt.Errorf("role add %s: %w", name, err)
	}
	_, err := fmt.Fprintf(w, "Role %s created\n", name)
	return err
}

func runRoleDelete(ctx context.Context, c roleAdmin, w io.Writer, name string) error {
	if _, err := c.RoleDelete(ctx, name); err != nil {
		return fmt.Errorf("role delete %s: %w", name, err)
	}
	_, err := fmt.Fprintf(w, "Role %s deleted\n", name)
	return err
}

func runRoleGet(ctx context.Context, c roleAdmin, w io.Writer, name string) error {
	resp, err := c.RoleGet(ctx, name)
	if err != nil {
		return fmt.Errorf("role get %s: %w", name, err)
	}
	return writeRole(w, name, resp.Perm)
}

func runRoleList(ctx context.Context, c roleAdmin, w io.Writer) error {
	resp, err := c.RoleList(ctx)
	if err != nil {
		return fmt.Errorf("role list: %w", err)
	}
	return writeNames(w, resp.Roles)
}

// permGrant is one parsed grant-permission.
type permGrant struct {
	role     string
	perm     clientv3.PermissionType
	key, end string
}

// parseGrant reads ROLE PERMTYPE KEY [ENDKEY] and the range flags.
func parseGrant(args []string, prefix, fromKey bool) (permGrant, error) {
	perm, err := clientv3.StrToPermissionType(args[1])
	if err != nil {
		return permGrant{}, usagef("role grant-permission: permission type %q is not read, write or readwrite", args[1])
	}
	key, end, err := permRange(args[2:], prefix, fromKey)
	if err != nil {
		return permGrant{}, err
	}
	return permGrant{role: args[0], perm: perm, key: key, end: end}, nil
}

func runRoleGrant(ctx context.Context, c roleAdmin, w io.Writer, g permGrant) error {
	if _, err := c.RoleGrantPermission(ctx, g.role, g.key, g.end, g.perm); err != nil {
		return fmt.Errorf("role grant-permission %s: %w", g.role, err)
	}
	_, err := fmt.Fprintf(w, "Role %s updated\n", g.role)
	return err
}

func runRoleRevoke(ctx context.Context, c roleAdmin, w io.Writer, role, keyArg, key, end string) error {
	if _, err := c.RoleRevokePermission(ctx, role, key, end); err != nil {
		return fmt.Errorf("role revoke-permission %s: %w", role, err)
	}
	return writeRevoked(w, role, keyArg, end)
}

func newRoleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Add, inspect and delete roles and their key permissions (like etcdctl role)",
		Args:  argsBetween(0, 0),
		RunE:  needSubcommand("add, get, list, delete, grant-permission or revoke-permission"),
	}
	cmd.AddCommand(
		userVerb("add NAME", "Add a role", 1, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runRoleAdd(ctx, c, w, args[0])
		}),
		userVerb("get NAME", "Show a role's permissions", 1, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runRoleGet(ctx, c, w, args[0])
		}),
		userVerb("list", "List roles", 0, func(ctx context.Context, c *clientv3.Client, w io.Writer, _ []string) error {
			return runRoleList(ctx, c, w)
		}),
		userVerb("delete NAME", "Delete a role", 1, func(ctx context.Context, c *clientv3.Client, w io.Writer, args []string) error {
			return runRoleDelete(ctx, c, w, args[0])
		}),
		newRoleGrantCmd(), newRoleRevokeCmd(),
	)
	return cmd
}

func newRoleGrantCmd() *cobra.Command {
	var (
		cf              clientFlags
		prefix, fromKey bool
	)
	cmd := &cobra.Command{
		Use:   "grant-permission [--prefix|--from-key] ROLE read|write|readwrite KEY [ENDKEY]",
		Short: "Grant a role read and/or write on a key, a range [KEY, ENDKEY), a prefix or every key from KEY on",
		Args:  argsBetween(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := parseGrant(args, prefix, fromKey)
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runRoleGrant(ctx, c, cmd.OutOrStdout(), g)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&prefix, "prefix", false, "grant every key that starts with KEY")
	cmd.Flags().BoolVar(&fromKey, "from-key", false, "grant every key from KEY on (byte order)")
	return cmd
}

func newRoleRevokeCmd() *cobra.Command {
	var (
		cf              clientFlags
		prefix, fromKey bool
	)
	cmd := &cobra.Command{
		Use:   "revoke-permission [--prefix|--from-key] ROLE KEY [ENDKEY]",
		Short: "Revoke a permission from a role (name it as it was granted)",
		Args:  argsBetween(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, end, err := permRange(args[1:], prefix, fromKey)
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *clientv3.Client) error {
				return runRoleRevoke(ctx, c, cmd.OutOrStdout(), args[0], args[1], key, end)
			})
		},
	}
	cf.register(cmd.Flags())
	cmd.Flags().BoolVar(&prefix, "prefix", false, "revoke the permission granted with --prefix")
	cmd.Flags().BoolVar(&fromKey, "from-key", false, "revoke the permission granted with --from-key")
	return cmd
}
