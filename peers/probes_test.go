package peers

// The check types register into config from probe's init.
import _ "github.com/lvsmon/lvsmon/probe"
