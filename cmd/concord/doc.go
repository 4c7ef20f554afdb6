// Command concord is the single Concord binary.
//
//	concord server   run one member (flags or CONCORD_<FLAG> environment variables)
//	concord dev      run a local N-member cluster on 127.0.0.1 until interrupted
//	concord get|put|del|members|status   quick client verbs on clientv3
//	concord watch|lease|lock|elect|member|snapshot   the rest of etcdctl's verbs
//	concord auth|user|role               auth administration, etcdctl's syntax and output
//	concord bench put|range|...          a load generator with etcd benchmark's flags
//	concord fault ...                    the fault plane of members run with --fault-injection
//	concord check                        a workload + nemesis against a live cluster, checked
//	concord fault partition|isolate-leader|delay|drop|duplicate|heal|list
//	                                     network faults on every member (needs server --fault-injection)
//
// Every client verb takes etcdctl's connection flags (--endpoints, --user,
// --password, --cacert, --cert, --key, --insecure-skip-tls-verify).
// Bad flags or arguments exit with status 2 and a message; other failures exit 1.
// concord check also exits 1 for an invalid history and 2 for an unknown
// verdict (the checker ran out of time).
package main
