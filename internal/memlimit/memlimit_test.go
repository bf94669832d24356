package memlimit

import (
	"io/fs"
	"testing"
)

type files map[string]string

func (f files) ReadFile(name string) ([]byte, error) {
	if s, ok := f[name]; ok {
		return []byte(s), nil
	}
	return nil, fs.ErrNotExist
}

func TestContainer(t *testing.T) {
	for _, c := range []struct {
		name  string
		files files
		limit int64
		from  string
		err   bool
	}{
		{"no cgroup file system", files{}, 0, "", false},
		{"v2 in a cgroup namespace", files{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "536870912\n"}, 536870912, "/sys/fs/cgroup/memory.max", false},
		{"v2 seen from the host", files{
			"/proc/self/cgroup":                          "0::/kubepods/pod1/c1\n",
			"/sys/fs/cgroup/kubepods/pod1/c1/memory.max": "268435456\n",
			"/sys/fs/cgroup/memory.max":                  "max\n",
		}, 268435456, "/sys/fs/cgroup/kubepods/pod1/c1/memory.max", false},
		{"v2 without a limit", files{"/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/memory.max": "max\n"}, 0, "/sys/fs/cgroup/memory.max", false},
		{"v1", files{
			"/proc/self/cgroup": "5:cpuacct,cpu:/\n4:memory:/docker/abc\n0::/\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "1073741824",
		}, 1073741824, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", false},
		{"v1 without a limit", files{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, "/sys/fs/cgroup/memory/memory.limit_in_bytes", false},
		{"garbage", files{"/sys/fs/cgroup/memory.max": "lots"}, 0, "/sys/fs/cgroup/memory.max", true},
		{"a negative size", files{"/sys/fs/cgroup/memory.max": "-1"}, 0, "/sys/fs/cgroup/memory.max", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			limit, from, err := Container(c.files)
			if limit != c.limit || from != c.from || (err != nil) != c.err {
				t.Fatalf("Container = %d, %q, %v; want %d, %q, error %v", limit, from, err, c.limit, c.from, c.err)
			}
		})
	}
}

func TestGOMEMLIMITWins(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "1GiB")
	if soft, why := Set(); soft != 0 || why == "" {
		t.Fatalf("Set = %d, %q with GOMEMLIMIT set", soft, why)
	}
}
