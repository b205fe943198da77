// Wrapper module: builds etcd from the published go.etcd.io/etcd/server/v3 module,
// whose own go.mod replaces its sibling modules with ../ paths; each is mapped here to
// its published release. (Debian's etcd is 3.4, which cannot serve the watch progress
// requests that current client-go watches rely on.)
module execplanner.io/localcluster/etcd

go 1.24.0

require go.etcd.io/etcd/server/v3 v3.6.8

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.6.8
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v3.6.8
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v3.6.8
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v3.6.8
)
