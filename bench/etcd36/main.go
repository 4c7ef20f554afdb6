// Command etcd is etcd 3.6.16 built from its Go module, the rival the
// benchmark harness runs Concord against. It lives in a module of its own so
// neither Concord's module nor the harness's ever depends on etcd's server.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
