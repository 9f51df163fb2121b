//! The ticket's QR code as a PNG: `qrcodegen` makes the modules, `png` writes them as
//! a 1-bit grayscale image with the 4-module quiet zone scanners need.

use qrcodegen::{QrCode, QrCodeEcc};

/// Pixels per module: large enough for a phone camera held at arm's length.
const SCALE: usize = 8;
const QUIET_ZONE: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the text does not fit in a QR code: {0:?}")]
    TooLong(qrcodegen::DataTooLong),
    #[error("cannot write the PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// `text` as a PNG QR code (error correction level M).
pub fn png(text: &str) -> Result<Vec<u8>, QrError> {
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).map_err(QrError::TooLong)?;
    let modules = qr.size() as usize + 2 * QUIET_ZONE;
    let side = modules * SCALE;
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0u8; row_bytes * side];
    for y in 0..side {
        for x in 0..side {
            let mx = (x / SCALE) as i32 - QUIET_ZONE as i32;
            let my = (y / SCALE) as i32 - QUIET_ZONE as i32;
            // In 1-bit grayscale a set bit is white; dark modules stay 0.
            if !qr.get_module(mx, my) {
                pixels[y * row_bytes + x / 8] |= 0x80 >> (x % 8);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&pixels)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png_with_room_for_the_quiet_zone() {
        let png = super::png("gt_0123456789abcdef").expect("png");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().expect("readable");
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.width as usize % super::SCALE, 0);
    }
}
