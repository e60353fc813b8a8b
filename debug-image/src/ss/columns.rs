//! iproute2 `ss`'s column layout (misc/ss.c `render_calc_width`/`render`),
//! reproduced so that output lines up exactly as SREs and their awk
//! scripts know it.
//!
//! Rows are buffered as cells; widths come from the longest cell of each
//! column (header included). On a terminal, spare width is spread over the
//! columns so that a row too wide for the screen wraps (by the terminal
//! itself) at a column boundary and stays aligned; in a pipe the layout is
//! compact. Like iproute2, a batch is rendered once
//! about 5 MiB is buffered, so memory stays bounded with any socket count;
//! widths only ever grow between batches.

use std::io::{self, Write};

pub const COLUMNS: usize = 10;
pub const NETID: usize = 0;
pub const STATE: usize = 1;
pub const PROCESS: usize = 8;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

struct Column {
    align: Align,
    header: &'static str,
    ldelim: &'static str,
}

const LAYOUT: [Column; COLUMNS] = [
    Column {
        align: Align::Left,
        header: "Netid",
        ldelim: "",
    },
    Column {
        align: Align::Left,
        header: "State",
        ldelim: " ",
    },
    Column {
        align: Align::Left,
        header: "Recv-Q",
        ldelim: " ",
    },
    Column {
        align: Align::Left,
        header: "Send-Q",
        ldelim: " ",
    },
    Column {
        align: Align::Right,
        header: "Local Address:",
        ldelim: " ",
    },
    Column {
        align: Align::Left,
        header: "Port",
        ldelim: "",
    },
    Column {
        align: Align::Right,
        header: "Peer Address:",
        ldelim: " ",
    },
    Column {
        align: Align::Left,
        header: "Port",
        ldelim: "",
    },
    Column {
        align: Align::Left,
        header: "Process",
        ldelim: "",
    },
    Column {
        align: Align::Left,
        header: "",
        ldelim: "",
    },
];

/// iproute2 renders when 5 chunks of 1 MiB are full.
const BATCH_BYTES: usize = 5 * 1024 * 1024;

pub struct Table {
    disabled: [bool; COLUMNS],
    max_len: [usize; COLUMNS],
    /// The last row's Process cell length, not yet counted in `max_len`:
    /// iproute2 measures a cell when it moves past it, and at the very end
    /// it never moves past the last row's Process cell.
    pending_process_len: Option<usize>,
    /// All cells' text back to back; `cell_ends` marks where each ends.
    text: String,
    cell_ends: Vec<usize>,
    screen_width: Option<usize>,
}

impl Table {
    /// `screen_width` is the terminal's width, or `None` in a pipe.
    pub fn new(disabled: [bool; COLUMNS], screen_width: Option<usize>) -> Table {
        Table {
            disabled,
            max_len: [0; COLUMNS],
            pending_process_len: None,
            text: String::new(),
            cell_ends: Vec::new(),
            screen_width,
        }
    }

    pub fn push_header(&mut self) {
        let cells: [&str; COLUMNS] = std::array::from_fn(|i| LAYOUT[i].header);
        self.push_row(&cells);
        self.commit_pending();
    }

    fn commit_pending(&mut self) {
        if let Some(len) = self.pending_process_len.take() {
            self.max_len[PROCESS] = self.max_len[PROCESS].max(len);
        }
    }

    /// Adds one row; renders the batch to `out` when enough is buffered.
    pub fn push_row(&mut self, cells: &[&str; COLUMNS]) {
        self.commit_pending();
        for (i, cell) in cells.iter().enumerate() {
            let cell = if self.disabled[i] { "" } else { cell };
            if i == PROCESS {
                self.pending_process_len = Some(cell.len());
            } else {
                self.max_len[i] = self.max_len[i].max(cell.len());
            }
            self.text.push_str(cell);
            self.cell_ends.push(self.text.len());
        }
    }

    pub fn wants_flush(&self) -> bool {
        self.text.len() >= BATCH_BYTES
    }

    /// Writes the buffered rows and empties the buffer. `last` is the
    /// final batch, whose last Process cell does not count for widths.
    pub fn render(&mut self, out: &mut impl Write, last: bool) -> io::Result<()> {
        if !last {
            self.commit_pending();
        }
        let widths = self.widths();
        let mut start = 0;
        let mut line = String::new();
        for row in self.cell_ends.chunks(COLUMNS) {
            line.clear();
            let mut started = false;
            for (i, &end) in row.iter().enumerate() {
                let cell = &self.text[start..end];
                start = end;
                if self.disabled[i] {
                    continue;
                }
                let col = &LAYOUT[i];
                let mut printed = 0;
                if started {
                    line.push_str(col.ldelim);
                    printed = col.ldelim.len();
                }
                started = true;
                let width = widths[i];
                if width > 0 && col.align == Align::Right {
                    let pad = width.saturating_sub(cell.len() + printed);
                    pad_with(&mut line, pad);
                    printed += pad;
                }
                line.push_str(cell);
                printed += cell.len();
                if width > 0 && col.align == Align::Left {
                    pad_with(&mut line, width.saturating_sub(printed));
                }
            }
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
        self.text.clear();
        self.cell_ends.clear();
        Ok(())
    }

    fn enabled(&self) -> impl Iterator<Item = usize> + '_ {
        (0..COLUMNS).filter(|i| !self.disabled[*i])
    }

    /// First pass: content width (+ delimiter except for the first column);
    /// second pass, on a terminal only: spread spare width over each line.
    fn widths(&self) -> [usize; COLUMNS] {
        let mut widths = [0usize; COLUMNS];
        let screen = self.screen_width.unwrap_or(usize::MAX);
        let mut first = true;
        for i in self.enabled() {
            let max = self.max_len[i];
            widths[i] = if !first && max > 0 {
                max + LAYOUT[i].ldelim.len()
            } else {
                max
            };
            widths[i] = widths[i].min(screen);
            if widths[i] > 0 {
                first = false;
            }
        }
        if self.screen_width.is_none() {
            return widths;
        }
        let sized: Vec<usize> = self.enabled().filter(|i| widths[*i] > 0).collect();
        let mut line_start = 0;
        let mut len = 0;
        let mut k = 0;
        while k < sized.len() {
            len += widths[sized[k]];
            let last = k + 1 == sized.len();
            if !last && len < screen {
                k += 1;
                continue;
            }
            let mut end = k;
            if len > screen && k > line_start {
                len -= widths[sized[k]];
                end = k - 1;
            }
            if len != screen {
                let count = end + 1 - line_start;
                let pad = screen.saturating_sub(len);
                let (spacing, mut rem) = (pad / count, pad % count);
                for idx in (line_start..=end).rev() {
                    widths[sized[idx]] += spacing;
                    if rem > 0 {
                        widths[sized[idx]] += 1;
                        rem -= 1;
                    }
                }
            }
            line_start = end + 1;
            k = end + 1;
            len = 0;
        }
        widths
    }
}

fn pad_with(line: &mut String, n: usize) {
    line.extend(std::iter::repeat_n(' ', n));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(rows: &[[&str; COLUMNS]], disabled: [bool; COLUMNS]) -> String {
        let mut t = Table::new(disabled, None);
        t.push_header();
        for r in rows {
            t.push_row(r);
        }
        let mut out = Vec::new();
        t.render(&mut out, true).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_layout_matches_iproute2() {
        // Captured from iproute2 ss 6.1 `ss -tan | cat -A` (trailing spaces kept).
        let mut disabled = [false; COLUMNS];
        disabled[NETID] = true;
        let rows = [
            [
                "",
                "LISTEN",
                "0     ",
                "5     ",
                "127.0.0.1:",
                "8080",
                "0.0.0.0:",
                "*",
                "",
                "",
            ],
            [
                "",
                "ESTAB",
                "0     ",
                "0     ",
                "127.0.0.1:",
                "8080",
                "127.0.0.1:",
                "34282",
                "",
                "",
            ],
            [
                "",
                "ESTAB",
                "0     ",
                "0     ",
                "127.0.0.1:",
                "34282",
                "127.0.0.1:",
                "8080",
                "",
                "",
            ],
            [
                "", "LISTEN", "0     ", "5     ", "*:", "9090", "*:", "*", "", "",
            ],
        ];
        let want = "State  Recv-Q Send-Q Local Address:Port  Peer Address:Port Process\n\
                    LISTEN 0      5          127.0.0.1:8080       0.0.0.0:*           \n\
                    ESTAB  0      0          127.0.0.1:8080     127.0.0.1:34282       \n\
                    ESTAB  0      0          127.0.0.1:34282    127.0.0.1:8080        \n\
                    LISTEN 0      5                  *:9090             *:*           \n";
        assert_eq!(render(&rows, disabled), want);
    }

    #[test]
    fn glued_port_and_process_headers_like_iproute2() {
        let mut disabled = [false; COLUMNS];
        disabled[NETID] = true;
        let rows = [[
            "", "UNCONN", "0     ", "0     ", "0.0.0.0:", "1", "0.0.0.0:", "*", "", "",
        ]];
        let want = "State  Recv-Q Send-Q Local Address:Port Peer Address:PortProcess\n\
                    UNCONN 0      0            0.0.0.0:1         0.0.0.0:*          \n";
        assert_eq!(render(&rows, disabled), want);
    }
}
