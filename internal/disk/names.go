package disk

import (
	"path"

	"github.com/larderfs/larder"
)

// checkNewName refuses to give p a name that larder.ValidateNewName
// refuses (a bidirectional override, a control character, a name not in
// NFC, ...), unless something is at p already: a file or folder named
// before the rule keeps its name, and can be replaced, moved or removed.
// Only the last element is new: the folders above it exist.
func (sp *Space) checkNewName(p string) error {
	if _, err := sp.root.Lstat(tree(p)); err == nil {
		return nil
	}
	return larder.ValidateNewName("name", path.Base(p))
}
