// Package layering holds the test that keeps Concord's dependency rule true:
// nothing at or below internal/server imports a front-end, gRPC, net/http or
// a protocol's wire types (DESIGN.md §1). It has no code of its own.
package layering
