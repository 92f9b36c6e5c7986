//! The text `pretty` prints, before and after layout: a tree of [`Doc`]s
//! (what to say, already cut to the depth and item limits) laid out in
//! lines of a given width.

use std::fmt::Write as _;

/// Columns each level of a broken group is indented by.
const STEP: usize = 2;

/// One piece of text before layout: a value written on one line, or a
/// group of items that may be broken over lines.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Doc {
    /// Written as it is, unless `cut` allows shortening it to the room left.
    Atom {
        /// The text (no newlines).
        text: String,
        /// Its length in characters.
        len: usize,
        /// How to shorten it (long strings and bytes), if it may be.
        cut: Option<AtomCut>,
    },
    /// Items between brackets.
    Group(Box<Group>),
}

/// How a long string or bytes atom is shortened: its repr's closing
/// quote stays, and the full length is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct AtomCut {
    /// The value's full length in `unit`s.
    pub total: usize,
    /// Whether the text holds only a prefix of the value (its repr, then
    /// closed), so the length must be written whatever the room.
    pub partial: bool,
    /// `chars` or `bytes`.
    pub unit: &'static str,
}

/// How a group that does not fit on its line is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Break {
    /// One item per line (dicts, objects with attributes, modules with
    /// submodules shown, sequences holding groups).
    Lines,
    /// Items packed into lines up to the width (sequences of atoms).
    Fill,
    /// Kept on one line, items left out past the width with a count (a
    /// module whose submodules are not shown: PyTorch's one-line modules).
    Cut,
}

/// Items between an opening and a closing text.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Group {
    /// `[`, `{`, `OrderedDict({`, `Conv2d(`, ...
    pub open: String,
    /// `]`, `}`, `})`, `)`, ...
    pub close: String,
    /// The closing text on one line, when it differs (a 1-tuple's `,)`).
    pub close_flat: Option<String>,
    /// The items shown.
    pub items: Vec<Item>,
    /// Items left out after them (the item limit).
    pub more: usize,
    /// How the group breaks when it does not fit.
    pub breaks: Break,
    /// Whether broken lines end with `,` (Python data; not modules).
    pub commas: bool,
    /// Length of the one-line form, in characters (saturating).
    pub flat: usize,
}

/// One item of a group: an optional label (`'key': `, `name: `, `name=`)
/// and its value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Item {
    /// Written before the value, separator included.
    pub label: String,
    /// The value.
    pub doc: Doc,
}

/// `... N more`.
pub(super) fn more_text(more: usize) -> String {
    format!("... {more} more")
}

impl Doc {
    /// A text that is never shortened.
    pub fn atom(text: String) -> Doc {
        let len = text.chars().count();
        Doc::Atom {
            text,
            len,
            cut: None,
        }
    }

    /// The length of the one-line form, in characters.
    pub fn flat_len(&self) -> usize {
        match self {
            Doc::Atom { len, .. } => *len,
            Doc::Group(group) => group.flat,
        }
    }

    /// Whether this is a group (not an atom).
    pub fn is_group(&self) -> bool {
        matches!(self, Doc::Group(_))
    }
}

impl Group {
    /// A group, its one-line length computed from its items.
    pub fn new(
        open: String,
        close: String,
        items: Vec<Item>,
        more: usize,
        breaks: Break,
        commas: bool,
    ) -> Group {
        let mut group = Group {
            open,
            close,
            close_flat: None,
            items,
            more,
            breaks,
            commas,
            flat: 0,
        };
        group.flat = group.measure();
        group
    }

    fn measure(&self) -> usize {
        let chars = |text: &str| text.chars().count();
        let mut flat = chars(&self.open)
            .saturating_add(chars(self.close_flat.as_deref().unwrap_or(&self.close)));
        for (i, item) in self.items.iter().enumerate() {
            flat = flat
                .saturating_add(if i > 0 { 2 } else { 0 })
                .saturating_add(chars(&item.label))
                .saturating_add(item.doc.flat_len());
        }
        if self.more > 0 {
            let sep = if self.items.is_empty() { 0 } else { 2 };
            flat = flat.saturating_add(sep + more_text(self.more).len());
        }
        flat
    }

    /// Sets the one-line closing text (a 1-tuple's `,)`).
    pub fn with_close_flat(mut self, close_flat: &str) -> Group {
        self.close_flat = Some(close_flat.to_owned());
        self.flat = self.measure();
        self
    }
}

/// Lays docs out in lines of `width` columns; stops (with `...`) once the
/// text passes `max_len` bytes.
pub(super) struct Layout {
    /// Columns per line.
    pub width: usize,
    /// Whether atoms may be shortened and one-line groups cut.
    pub shorten: bool,
    /// Most bytes written.
    pub max_len: usize,
    /// The text so far.
    pub out: String,
}

impl Layout {
    fn full(&mut self) -> bool {
        if self.out.len() > self.max_len {
            if !self.out.ends_with("...") {
                self.out.push_str("...");
            }
            true
        } else {
            false
        }
    }

    fn pad(&mut self, indent: usize) {
        self.out.extend(std::iter::repeat_n(' ', indent));
    }

    /// Writes `doc` at a line indented by `indent`, with `room` columns
    /// left for it on the current line.
    pub fn write(&mut self, doc: &Doc, indent: usize, room: usize) {
        if self.full() {
            return;
        }
        match doc {
            Doc::Atom { text, len, cut } => match cut {
                Some(cut) if self.shorten && (cut.partial || *len > room) => {
                    self.write_cut_atom(text, *cut, room);
                }
                _ => self.out.push_str(text),
            },
            Doc::Group(group) if group.flat <= room => self.write_flat(doc),
            Doc::Group(group) => match group.breaks {
                Break::Cut if self.shorten => self.write_cut(group, room),
                Break::Fill => self.write_fill(group, indent),
                Break::Lines | Break::Cut => self.write_lines(group, indent),
            },
        }
    }

    /// A string or bytes repr shortened to `room`: `'abc...' (300 chars)`.
    fn write_cut_atom(&mut self, text: &str, cut: AtomCut, room: usize) {
        let quote = text.chars().last().unwrap_or('\'');
        let suffix = format!("...{quote} ({} {})", cut.total, cut.unit);
        // At least the opening quote and a few characters, however narrow.
        let keep = room.saturating_sub(suffix.len()).max(6);
        let body = text.strip_suffix(quote).unwrap_or(text);
        let prefix: String = body.chars().take(keep).collect();
        // An escape sequence cut in two would read as other characters.
        let prefix = match prefix.rfind('\\') {
            Some(at) if prefix.len() - at < 4 => &prefix[..at],
            _ => &prefix,
        };
        self.out.push_str(prefix);
        self.out.push_str(&suffix);
    }

    /// The one-line form.
    fn write_flat(&mut self, doc: &Doc) {
        if self.full() {
            return;
        }
        match doc {
            Doc::Atom { text, .. } => self.out.push_str(text),
            Doc::Group(group) => {
                self.out.push_str(&group.open);
                for (i, item) in group.items.iter().enumerate() {
                    if i > 0 {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&item.label);
                    self.write_flat(&item.doc);
                }
                if group.more > 0 {
                    if !group.items.is_empty() {
                        self.out.push_str(", ");
                    }
                    self.out.push_str(&more_text(group.more));
                }
                self.out
                    .push_str(group.close_flat.as_deref().unwrap_or(&group.close));
            }
        }
    }

    /// One line: as many items as fit in `room`, then `... N more`.
    fn write_cut(&mut self, group: &Group, room: usize) {
        let chars = |text: &str| text.chars().count();
        self.out.push_str(&group.open);
        let mut used = chars(&group.open) + chars(&group.close);
        let total = group.items.len() + group.more;
        for (i, item) in group.items.iter().enumerate() {
            let sep = if i > 0 { 2 } else { 0 };
            let len = chars(&item.label) + item.doc.flat_len();
            let left_after = total - i - 1;
            let tail = if left_after > 0 {
                2 + more_text(left_after).len()
            } else {
                0
            };
            if used + sep + len + tail > room {
                if i > 0 {
                    self.out.push_str(", ");
                }
                self.out.push_str(&more_text(total - i));
                self.out.push_str(&group.close);
                return;
            }
            used += sep + len;
            if i > 0 {
                self.out.push_str(", ");
            }
            self.out.push_str(&item.label);
            self.write_flat(&item.doc);
        }
        if group.more > 0 {
            if !group.items.is_empty() {
                self.out.push_str(", ");
            }
            self.out.push_str(&more_text(group.more));
        }
        self.out.push_str(&group.close);
    }

    /// Items packed into lines, each line ending with `,`.
    fn write_fill(&mut self, group: &Group, indent: usize) {
        let inner = indent + STEP;
        self.out.push_str(&group.open);
        self.out.push('\n');
        self.pad(inner);
        let mut column = inner;
        for item in &group.items {
            if self.full() {
                return;
            }
            let len = item.label.chars().count() + item.doc.flat_len() + 1;
            if column > inner && column + 1 + len > self.width {
                self.out.push('\n');
                self.pad(inner);
                column = inner;
            } else if column > inner {
                self.out.push(' ');
                column += 1;
            }
            self.out.push_str(&item.label);
            let room = self
                .width
                .saturating_sub(column + item.label.chars().count() + 1);
            let before = self.out.len();
            self.write(&item.doc, inner, room);
            self.out.push(',');
            column += self.out[before..].chars().count() + item.label.chars().count();
        }
        if group.more > 0 {
            let text = more_text(group.more);
            if column > inner && column + 1 + text.len() > self.width {
                self.out.push('\n');
                self.pad(inner);
            } else if column > inner {
                self.out.push(' ');
            }
            self.out.push_str(&text);
        }
        self.out.push('\n');
        self.pad(indent);
        self.out.push_str(&group.close);
    }

    /// One item per line.
    fn write_lines(&mut self, group: &Group, indent: usize) {
        let inner = indent + STEP;
        self.out.push_str(&group.open);
        self.out.push('\n');
        let comma = usize::from(group.commas);
        for item in &group.items {
            if self.full() {
                return;
            }
            self.pad(inner);
            self.out.push_str(&item.label);
            let room = self
                .width
                .saturating_sub(inner + item.label.chars().count() + comma);
            self.write(&item.doc, inner, room);
            if group.commas {
                self.out.push(',');
            }
            self.out.push('\n');
        }
        if group.more > 0 {
            self.pad(inner);
            let _ = writeln!(self.out, "{}", more_text(group.more));
        }
        self.pad(indent);
        self.out.push_str(&group.close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atoms(texts: &[&str]) -> Vec<Item> {
        texts
            .iter()
            .map(|text| Item {
                label: String::new(),
                doc: Doc::atom((*text).to_owned()),
            })
            .collect()
    }

    fn lay(doc: &Doc, width: usize) -> String {
        let mut layout = Layout {
            width,
            shorten: true,
            max_len: 1 << 20,
            out: String::new(),
        };
        layout.write(doc, 0, width);
        layout.out
    }

    fn list(items: Vec<Item>, more: usize, breaks: Break) -> Doc {
        Doc::Group(Box::new(Group::new(
            "[".into(),
            "]".into(),
            items,
            more,
            breaks,
            true,
        )))
    }

    #[test]
    fn a_group_that_fits_stays_on_one_line() {
        let doc = list(atoms(&["1", "2", "3"]), 0, Break::Lines);
        assert_eq!(doc.flat_len(), 9);
        assert_eq!(lay(&doc, 9), "[1, 2, 3]");
        assert_eq!(lay(&doc, 8), "[\n  1,\n  2,\n  3,\n]");
    }

    #[test]
    fn fill_packs_atoms_up_to_the_width() {
        let doc = list(atoms(&["10", "20", "30", "40", "50"]), 7, Break::Fill);
        assert_eq!(
            lay(&doc, 13),
            "[\n  10, 20, 30,\n  40, 50,\n  ... 7 more\n]"
        );
    }

    #[test]
    fn cut_keeps_one_line_and_counts_what_it_leaves_out() {
        let items = atoms(&["aaaa", "bbbb", "cccc", "dddd", "eeee"]);
        let doc = list(items, 0, Break::Cut);
        assert_eq!(lay(&doc, 30), "[aaaa, bbbb, cccc, dddd, eeee]");
        // "[aaaa, bbbb, ... 3 more]" is 24 columns.
        assert_eq!(lay(&doc, 29), "[aaaa, bbbb, ... 3 more]");
        assert_eq!(lay(&doc, 24), "[aaaa, bbbb, ... 3 more]");
        assert_eq!(lay(&doc, 23), "[aaaa, ... 4 more]");
        assert_eq!(lay(&doc, 5), "[... 5 more]");
    }

    #[test]
    fn lines_count_the_items_left_out() {
        let doc = list(atoms(&["[1]", "[2]"]), 3, Break::Lines);
        assert_eq!(lay(&doc, 10), "[\n  [1],\n  [2],\n  ... 3 more\n]");
    }

    #[test]
    fn a_long_string_is_cut_to_the_room_left() {
        let text = format!("'{}'", "x".repeat(300));
        let doc = Doc::Atom {
            len: text.len(),
            text,
            cut: Some(AtomCut {
                total: 300,
                unit: "chars",
                partial: false,
            }),
        };
        let out = lay(&doc, 30);
        assert_eq!(out, "'xxxxxxxxxxxxx...' (300 chars)");
        assert_eq!(out.len(), 30);
    }
}
