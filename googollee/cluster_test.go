package googollee_test

import (
	"testing"

	"github.com/iosessions/iosessions/internal/conformance"
)

// TestNodesOnCluster runs the core of the many-nodes cases with two
// servers of this binding on a private Redis Cluster.
func TestNodesOnCluster(t *testing.T) { conformance.NodesOnCluster(t, suite) }
