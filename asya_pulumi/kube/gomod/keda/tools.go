//go:build tools
package tools
import (
 _ "github.com/kedacore/keda/v2/cmd/operator"
 _ "github.com/kedacore/keda/v2/cmd/adapter"
 _ "github.com/kedacore/keda/v2/cmd/webhooks"
)
