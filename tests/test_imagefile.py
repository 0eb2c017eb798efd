"""Decoding untrusted bytes: every failure has its code, and awkward real-world images come out RGB."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from catalog.imagefile import ImageError, center_crop_box, open_image, preprocess

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def photo(size=(64, 48)):
    """A smooth gradient, so lossy formats reproduce it closely."""
    width, height = size
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2).astype(np.uint8))


def png_with_declared_size(width, height):
    """A valid 1x1 PNG whose header claims another size: what a decompression bomb looks like up front."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    ihdr_start = 8 + 4  # signature, then the IHDR chunk's length field
    data[ihdr_start + 4 : ihdr_start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr_start : ihdr_start + 4 + 13]))
    data[ihdr_start + 17 : ihdr_start + 21] = struct.pack(">I", crc)
    return bytes(data)


def assert_error(data, code, **options):
    with pytest.raises(ImageError) as caught:
        open_image(data, **options)
    assert caught.value.code == code
    assert caught.value.message
    return caught.value


def test_empty_bytes_are_refused_as_empty():
    assert assert_error(b"", "empty").status == 400


def test_text_is_refused_as_not_an_image():
    assert_error(b"hello, this is not a picture\n" * 20, "not_an_image")


def test_random_bytes_are_refused_as_not_an_image():
    assert_error(np.random.default_rng(0).bytes(5000), "not_an_image")


def test_svg_is_refused_as_unsupported_type_with_status_415():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    error = assert_error(svg, "unsupported_type")
    assert error.status == 415
    assert "SVG" in error.message


def test_svg_without_xml_declaration_is_refused_as_unsupported_type():
    assert_error(b'  <svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "unsupported_type")


def test_pdf_is_refused_as_unsupported_type():
    assert_error(b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n", "unsupported_type")


def test_html_is_refused_as_unsupported_type():
    assert_error(b"<!DOCTYPE html><html><body>404 Not Found</body></html>", "unsupported_type")


def test_heic_is_refused_as_unsupported_type():
    assert_error(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100), "unsupported_type")


def test_an_image_format_outside_the_allowed_list_is_refused():
    assert_error(encode(photo(), "TGA"), "not_an_image")


def test_cut_jpeg_is_refused_as_truncated():
    data = encode(photo((300, 200)), "JPEG", quality=90)
    assert_error(data[: len(data) // 2], "truncated")


def test_cut_png_is_refused_as_truncated():
    data = encode(photo((300, 200)), "PNG")
    assert_error(data[: len(data) // 2], "truncated")


def test_truncation_is_detected_even_when_pillow_is_told_to_load_truncated_images(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    jpeg = encode(photo((300, 200)), "JPEG", quality=90)
    png = encode(photo((300, 200)), "PNG")
    assert_error(jpeg[: len(jpeg) // 2], "truncated")
    assert_error(png[: len(png) // 2], "truncated")


def test_header_over_max_pixels_is_refused_before_decoding():
    assert_error(png_with_declared_size(5000, 4000), "too_many_pixels", max_pixels=1_000_000)


def test_header_far_over_pillows_own_limit_is_refused_as_too_many_pixels():
    # 10^10 pixels: Pillow itself raises DecompressionBombError while opening.
    assert_error(png_with_declared_size(100_000, 100_000), "too_many_pixels", max_pixels=10**11)


def test_pillows_decompression_bomb_warning_becomes_too_many_pixels():
    # 10^8 pixels: between Pillow's warning and error limits, and allowed by max_pixels.
    assert_error(png_with_declared_size(10_000, 10_000), "too_many_pixels", max_pixels=10**9)


def test_default_pixel_limit_refuses_sixty_megapixels():
    assert_error(png_with_declared_size(10_000, 6_000), "too_many_pixels")


def test_real_image_over_max_pixels_is_refused():
    assert_error(encode(photo((200, 100)), "PNG"), "too_many_pixels", max_pixels=19_999)


def test_bytes_over_max_bytes_are_refused_as_too_large_with_status_413():
    error = assert_error(encode(photo(), "PNG"), "too_large", max_bytes=100)
    assert error.status == 413


def test_image_error_is_a_value_error_whose_text_is_the_message():
    error = assert_error(b"", "empty")
    assert isinstance(error, ValueError)
    assert str(error) == error.message


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "AVIF"])
def test_common_formats_decode_to_rgb_of_the_same_size(image_format):
    image = open_image(encode(photo((64, 48)), image_format))
    assert image.mode == "RGB"
    assert image.size == (64, 48)


def test_lossless_png_decodes_to_the_exact_pixels():
    original = photo()
    assert np.array_equal(np.asarray(open_image(encode(original, "PNG"))), np.asarray(original))


def test_cmyk_jpeg_decodes_to_rgb_close_to_the_original():
    original = photo()
    image = open_image(encode(original.convert("CMYK"), "JPEG", quality=95))
    assert image.mode == "RGB"
    difference = np.abs(np.asarray(image, float) - np.asarray(original, float))
    assert difference.mean() < 8


def test_16_bit_greyscale_png_keeps_its_brightness():
    ramp = np.linspace(0, 65535, 64 * 48).reshape(48, 64).astype(np.uint16)
    data = encode(Image.fromarray(ramp), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = np.asarray(open_image(data))
    assert pixels[0, 0].tolist() == [0, 0, 0]
    assert pixels[-1, -1].tolist() == [255, 255, 255]
    assert 120 <= pixels[24, 0, 0] <= 135


def test_float_tiff_decodes_to_rgb_with_full_contrast():
    ramp = np.linspace(0.0, 1.0, 64 * 48, dtype=np.float32).reshape(48, 64)
    pixels = np.asarray(open_image(encode(Image.fromarray(ramp), "TIFF")))
    assert pixels.min() == 0 and pixels.max() == 255


def test_palette_png_transparency_becomes_white():
    image = Image.new("P", (10, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (5, 0, 10, 10))
    rgb = open_image(encode(image, "PNG", transparency=0))
    assert rgb.getpixel((0, 0)) == WHITE
    assert rgb.getpixel((9, 9)) == RED


def test_rgba_alpha_is_composited_onto_white():
    image = Image.new("RGBA", (10, 10), (0, 0, 255, 0))
    image.paste((0, 0, 255, 255), (0, 0, 5, 10))
    image.paste((0, 0, 0, 128), (5, 0, 10, 10))
    rgb = open_image(encode(image, "PNG"))
    assert rgb.getpixel((0, 0)) == BLUE
    assert all(abs(channel - 127) <= 1 for channel in rgb.getpixel((9, 0)))


def test_greyscale_with_alpha_is_composited_onto_white():
    image = Image.new("LA", (4, 4), (0, 0))
    assert open_image(encode(image, "PNG")).getpixel((0, 0)) == WHITE


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 10), colour) for colour in (RED, BLUE, WHITE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert open_image(data).getpixel((10, 5)) == RED


def test_animated_webp_gives_its_first_frame():
    frames = [Image.new("RGB", (20, 10), colour) for colour in (RED, BLUE)]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    assert open_image(data).getpixel((10, 5)) == RED


def test_exif_orientation_is_applied():
    # Stored landscape, red on the left; orientation 6 means "turn 90 degrees clockwise to display".
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = open_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert upright.size == (20, 40)
    top, bottom = np.asarray(upright)[5, 10], np.asarray(upright)[35, 10]
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


def test_one_pixel_image_decodes():
    image = open_image(encode(Image.new("RGB", (1, 1), RED), "PNG"))
    assert image.size == (1, 1)
    assert image.getpixel((0, 0)) == RED


def test_black_and_white_image_decodes_to_rgb():
    image = open_image(encode(Image.new("1", (8, 8), 1), "BMP"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == WHITE


def test_crop_box_is_the_centred_square_of_224_256_of_the_short_side():
    assert center_crop_box(451, 300, 224) == (94, 19, 356, 281)
    assert center_crop_box(300, 451, 224) == (19, 94, 281, 356)
    assert center_crop_box(256, 256, 224) == (16, 16, 240, 240)


def test_preprocess_gives_normalised_float32_array_of_the_model_size():
    array = preprocess(photo((451, 300)))
    assert array.shape == (224, 224, 3)
    assert array.dtype == np.float32
    assert array.min() >= -127 / 128 and array.max() <= 1.0


def test_preprocess_maps_pixel_values_to_minus_one_to_one():
    black = preprocess(Image.new("RGB", (300, 300), (0, 0, 0)))
    white = preprocess(Image.new("RGB", (300, 300), WHITE))
    assert np.allclose(black, -127 / 128)
    assert np.allclose(white, 1.0)


def test_preprocess_accepts_tiny_and_transparent_images():
    tiny = preprocess(Image.new("RGBA", (1, 1), (0, 0, 0, 0)))
    assert tiny.shape == (224, 224, 3)
    assert np.allclose(tiny, 1.0)


# Reduced decoding, for search queries: only the short side a search needs.


def test_a_reduced_jpeg_is_decoded_at_a_fraction_of_its_size():
    # 4000x3000 holds 12 MP; decoded at 1/4 scale it is 1000x750, under a 1 MP cap on what is decoded.
    data = encode(photo((4000, 3000)), "JPEG")

    image = open_image(data, reduce_to=448, max_decoded_pixels=1_000_000)

    assert image.size == (597, 448)


def test_a_png_cannot_be_decoded_reduced_so_its_own_size_meets_the_decoded_cap():
    data = encode(Image.new("RGB", (1200, 1000), RED), "PNG")

    error = assert_error(data, "too_many_pixels", reduce_to=448, max_decoded_pixels=1_000_000)

    assert "1200x1000" in error.message and "1,000,000" in error.message


def test_a_reduced_jpeg_still_meets_the_cap_on_its_own_size():
    data = encode(photo((2000, 2000)), "JPEG")

    assert_error(data, "too_many_pixels", max_pixels=1_000_000, reduce_to=448, max_decoded_pixels=10**9)


def test_a_reduced_image_keeps_its_orientation_and_the_short_side_asked_for():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned; shown rotated 90 degrees clockwise
    data = encode(photo((2000, 1000)), "JPEG", exif=exif.tobytes())

    assert open_image(data, reduce_to=300).size == (300, 600)


def test_a_reduced_transparent_png_is_still_white_where_transparent():
    image = Image.new("RGBA", (1000, 800), (0, 0, 255, 255))
    image.paste((255, 0, 0, 0), (0, 0, 500, 800))  # the left half transparent

    decoded = open_image(encode(image, "PNG"), reduce_to=100)

    assert decoded.size == (125, 100)
    assert decoded.getpixel((10, 50)) == WHITE and decoded.getpixel((115, 50)) == BLUE


def test_a_reduced_palette_png_is_turned_rgb_before_it_is_shrunk():
    # Resampled as a palette, a fine red/blue checkerboard would keep pure colours; as RGB it averages.
    checkers = Image.fromarray((np.indices((400, 400)).sum(axis=0) % 2 * 255).astype(np.uint8))
    palette = Image.merge("RGB", (checkers, Image.new("L", checkers.size), checkers.point(lambda v: 255 - v)))

    decoded = open_image(encode(palette.quantize(2), "PNG"), reduce_to=100)

    red, _, blue = decoded.getpixel((50, 50))
    assert 100 < red < 155 and 100 < blue < 155


def test_a_small_image_is_never_enlarged():
    assert open_image(encode(photo((120, 90)), "JPEG"), reduce_to=448).size == (120, 90)
