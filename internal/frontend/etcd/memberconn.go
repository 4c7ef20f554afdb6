package etcd

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// dialMember connects to another member's client URL, for what one member
// asks another over the client API (lease renewals forwarded to the leader,
// the corruption check's HashKV). An https URL needs tlsCfg: the client
// side of the member's own client TLS (its trusted CA, and its certificate
// for members that require client certificates).
func dialMember(rawURL string, tlsCfg *tls.Config) (*grpc.ClientConn, error) {
	target, creds := rawURL, insecure.NewCredentials()
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		target = u.Host
		if u.Scheme == "https" {
			if tlsCfg == nil {
				return nil, fmt.Errorf("etcd front-end: cannot reach member at %s: no client TLS configured", rawURL)
			}
			creds = credentials.NewTLS(tlsCfg.Clone())
		}
	}
	return grpc.NewClient(target, grpc.WithTransportCredentials(creds))
}
