package etcd

import (
	"reflect"
	"testing"
	"time"
)

func TestCorruptCheckMismatches(t *testing.T) {
	cases := []struct {
		name  string
		peers []peerHash
		want  []Mismatch
	}{
		{"all agree", []peerHash{{1, 7, 3}, {2, 7, 3}}, nil},
		{"one differs", []peerHash{{1, 7, 3}, {2, 8, 3}}, []Mismatch{{MemberID: 2, Revision: 10, Hash: 8, Want: 7}}},
		{"compacted differently: not comparable", []peerHash{{1, 9, 5}}, nil},
		{"both differ", []peerHash{{1, 1, 3}, {2, 2, 3}}, []Mismatch{{1, 10, 1, 7}, {2, 10, 2, 7}}},
		{"no peers", nil, nil},
	}
	for _, c := range cases {
		if got := mismatches(10, 7, 3, c.peers); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: mismatches = %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestCorruptCheckConfigValidate(t *testing.T) {
	cases := []struct {
		cfg CorruptCheckConfig
		ok  bool
	}{
		{CorruptCheckConfig{Interval: time.Second}, true},
		{CorruptCheckConfig{}, false},
		{CorruptCheckConfig{Interval: time.Second, Timeout: -1}, false},
	}
	for _, c := range cases {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", c.cfg, err, c.ok)
		}
	}
}
