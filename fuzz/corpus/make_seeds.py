# Makes the committed fuzz seeds (run once with Pillow: python3 make_seeds.py).
# decode/: tiny images in every format the tool reads, incl. 16-bit, grey, alpha, CMYK and
# an EXIF-rotated JPEG. analyze_pixels/: two size bytes then grey pixels.
import io, struct
from PIL import Image, ImageDraw

def scene(mode="RGB", size=(24, 18)):
    im = Image.new("RGB", size, (200, 150, 130))
    d = ImageDraw.Draw(im)
    d.line([(0, 5), (size[0], 12)], fill=(40, 25, 15), width=3)
    return im.convert(mode) if mode != "RGB" else im

def save(name, im, **kw):
    im.save("decode/" + name, **kw)

save("rgb.png", scene())
save("grey.png", scene("L"))
save("rgba.png", scene("RGBA"))
save("la.png", scene("LA"))
save("grey16.png", scene("L").convert("I;16"))
save("rgb.jpg", scene(), quality=80)
save("grey.jpg", scene("L"), quality=80)
save("cmyk.jpg", scene("CMYK"), quality=80)
save("progressive.jpg", scene(), quality=80, progressive=True)
exif = Image.Exif(); exif[0x0112] = 6
save("rotated.jpg", scene(), quality=80, exif=exif.tobytes())
save("rgb.tif", scene())
save("grey.tif", scene("L"), compression="tiff_lzw")
save("rgb.bmp", scene())
save("grey.bmp", scene("L"))
try:
    save("rgb.webp", scene(), quality=80)
    save("lossless.webp", scene(), lossless=True)
except Exception as e:  # Pillow built without WebP
    print("no webp:", e)

def pixels(name, w, h, f):
    data = bytes([w - 1, h - 1]) + bytes(f(x, y) for y in range(h) for x in range(w))
    open("analyze_pixels/" + name, "wb").write(data)

pixels("flat", 8, 8, lambda x, y: 128)
pixels("stripe", 40, 30, lambda x, y: 40 if abs(y - 15) <= 2 else 180)
pixels("diagonal", 48, 48, lambda x, y: 30 if abs(x - y) <= 3 else 170)
pixels("light", 32, 32, lambda x, y: 240 if abs(x - 16) <= 2 else 120)
pixels("cross", 64, 64, lambda x, y: 20 if abs(x - 32) <= 4 or abs(y - 20) <= 1 else 190)
pixels("checker", 16, 16, lambda x, y: 255 * ((x + y) % 2))
