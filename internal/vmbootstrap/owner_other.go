//go:build !unix

package vmbootstrap

import "io/fs"

// owner is not known where files have no owning uid: Write then refuses
// every existing folder, and writes only folders it creates.
func owner(fs.FileInfo) (uid int, ok bool) { return 0, false }
