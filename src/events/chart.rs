//! The arrivals chart of `/event stats`: a bar per quarter hour, drawn into a PNG
//! with its own tiny digit font, so it needs no font files or drawing crate. The y
//! axis is labelled with the busiest slot's count, the x axis with the first and last
//! slot's UTC time.

use chrono::{DateTime, Utc};

const BAR: usize = 24;
const GAP: usize = 6;
const MARGIN: usize = 40;
const PLOT_HEIGHT: usize = 160;
/// Each font pixel drawn as a square of this side.
const SCALE: usize = 2;

const BACKGROUND: [u8; 3] = [255, 255, 255];
const AXIS: [u8; 3] = [120, 120, 120];
const BAR_COLOUR: [u8; 3] = [46, 160, 67];
const INK: [u8; 3] = [40, 40, 40];

/// An RGB canvas, row by row.
struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: usize, height: usize) -> Canvas {
        Canvas {
            width,
            height,
            pixels: BACKGROUND.repeat(width * height),
        }
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, colour: [u8; 3]) {
        for row in y..(y + h).min(self.height) {
            for col in x..(x + w).min(self.width) {
                let at = (row * self.width + col) * 3;
                self.pixels[at..at + 3].copy_from_slice(&colour);
            }
        }
    }

    /// Writes `text` (digits and `:`) with its top-left corner at (x, y).
    fn text(&mut self, x: usize, y: usize, text: &str) {
        for (i, c) in text.chars().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            let left = x + i * 4 * SCALE;
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits & (0b100 >> col) != 0 {
                        self.fill(left + col * SCALE, y + r * SCALE, SCALE, SCALE, INK);
                    }
                }
            }
        }
    }

    fn png(&self) -> Result<Vec<u8>, png::EncodingError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

/// 3×5 glyphs, one row per entry, the high bit on the left.
fn glyph(c: char) -> Option<[u8; 5]> {
    Some(match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        ':' => [0b000, 0b010, 0b000, 0b010, 0b000],
        _ => return None,
    })
}

/// The chart of `arrivals` (slot start, admissions in it), oldest first.
pub fn arrivals_png(arrivals: &[(DateTime<Utc>, usize)]) -> Result<Vec<u8>, png::EncodingError> {
    let slots = arrivals.len().max(1);
    // Room for the last slot's time label past the last bar.
    let width = MARGIN * 2 + slots * (BAR + GAP);
    let height = PLOT_HEIGHT + MARGIN * 2;
    let mut canvas = Canvas::new(width, height);
    let base = MARGIN + PLOT_HEIGHT;
    canvas.fill(MARGIN - 2, MARGIN, 2, PLOT_HEIGHT + 2, AXIS);
    canvas.fill(MARGIN - 2, base, width - MARGIN, 2, AXIS);
    let most = arrivals.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    for (i, (_, n)) in arrivals.iter().enumerate() {
        let h = (n * PLOT_HEIGHT).div_ceil(most);
        let x = MARGIN + GAP / 2 + i * (BAR + GAP);
        canvas.fill(x, base - h, BAR, h, BAR_COLOUR);
    }
    canvas.text(4, MARGIN, &most.to_string());
    canvas.text(4, base - 5 * SCALE, "0");
    if let (Some((first, _)), Some((last, _))) = (arrivals.first(), arrivals.last()) {
        canvas.text(MARGIN, base + 8, &first.format("%H:%M").to_string());
        let last_x = MARGIN + (arrivals.len() - 1) * (BAR + GAP);
        if arrivals.len() > 2 {
            canvas.text(last_x, base + 8, &last.format("%H:%M").to_string());
        }
    }
    canvas.png()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn decode(png: &[u8]) -> (usize, usize, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().expect("a PNG");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("a frame");
        (info.width as usize, info.height as usize, buf)
    }

    /// How many bar-coloured pixels the column at `x` has.
    fn bar_height(width: usize, pixels: &[u8], x: usize) -> usize {
        pixels
            .chunks(3)
            .skip(x)
            .step_by(width)
            .filter(|p| *p == BAR_COLOUR)
            .count()
    }

    #[test]
    fn bars_are_proportional_to_the_arrivals_of_their_slot() {
        let at = |m| Utc.with_ymd_and_hms(2026, 12, 24, 18, m, 0).unwrap();
        let arrivals = [(at(0), 4), (at(15), 8), (at(30), 2)];
        let (width, height, pixels) = decode(&arrivals_png(&arrivals).expect("png"));
        assert_eq!(height, PLOT_HEIGHT + 2 * MARGIN);
        assert_eq!(width, 2 * MARGIN + 3 * (BAR + GAP));
        let column = |i: usize| MARGIN + GAP / 2 + i * (BAR + GAP) + BAR / 2;
        assert_eq!(bar_height(width, &pixels, column(1)), PLOT_HEIGHT);
        assert_eq!(bar_height(width, &pixels, column(0)), PLOT_HEIGHT / 2);
        assert_eq!(bar_height(width, &pixels, column(2)), PLOT_HEIGHT / 4);
        assert!(pixels.chunks(3).any(|p| p == INK), "the axes are labelled");
    }

    #[test]
    fn no_arrivals_still_draws_empty_axes() {
        let (_, _, pixels) = decode(&arrivals_png(&[]).expect("png"));
        assert!(!pixels.chunks(3).any(|p| p == BAR_COLOUR));
        assert!(pixels.chunks(3).any(|p| p == AXIS));
    }
}
