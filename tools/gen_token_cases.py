#!/usr/bin/env python3
"""Writes tests/golden/tokens.txt: texts and the ids open_clip gives them.

Each line is `<UTF-8 of the text, hex>\\t<ids>`, the ids being the
non-padding part of open_clip.get_tokenizer('RN50')(text)[0] (SOT ... EOT)
separated by spaces, or `!<exception name>` where open_clip raises. Lines
starting with '#' are comments. tests/test_tokenizer.c reads it.

Run from the repository root with open_clip_torch installed (3.3.0 was used):

    python3 tools/gen_token_cases.py

The cases are deterministic (fixed seeds), so rerunning gives the same file
as long as open_clip, ftfy and regex are the same versions.
"""

import random
import sys
import unicodedata

import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-* codecs)
import open_clip

OUT = "tests/golden/tokens.txt"
EOT = 49407

WORDS = """a an the of on in with and at by for to from photo picture image painting drawing
sketch close-up view dog cat bird horse car truck bicycle man woman child people group
red blue green yellow black white small large old new beautiful tiny big sitting standing
running walking flying eating table chair street beach mountain river city forest sky
sunset night snow rain tree flower house building kitchen room window door boat plane train
bus road field grass water ocean lake park garden food pizza cake coffee cup plate bowl
book phone computer laptop screen sign wall floor bed couch tv camera guitar ball frisbee
skateboard surfboard kite umbrella bag hat shirt dress shoes glasses smiling looking holding
two three several many near next behind under over top bottom left right front""".split()

SCRIPTS = [
    "Le café est très bon à Paris, n'est-ce pas ?",
    "Über den Wolken muß die Freiheit wohl grenzenlos sein",
    "El niño pequeño comió piña en la montaña",
    "Ação e coração: São Paulo à noite",
    "Zażółć gęślą jaźń",
    "Příliš žluťoučký kůň úpěl ďábelské ódy",
    "Árvíztűrő tükörfúrógép",
    "Şişli'de güzel bir gün, İstanbul ve Iğdır",
    "Ελληνικά: Η γρήγορη καφέ αλεπού ΠΗΔΆΕΙ ΠΆΝΩ ΑΠΌ ΤΟ ΣΚΥΛΊ",
    "ΟΔΥΣΣΕΥΣ και ΣΙΣΥΦΟΣ, Σ, ΑΣ, ΑΣ., Σ΄Α",
    "Съешь же ещё этих мягких французских булок, да выпей чаю",
    "Україна, Київ — ґанок і їжак",
    "Бързата кафява лисица",
    "مرحبا بالعالم، هذه صورة جميلة",
    "שלום עולם, זו תמונה יפה",
    "नमस्ते दुनिया, यह एक सुंदर तस्वीर है",
    "আমি বাংলায় গান গাই",
    "สวัสดีชาวโลก นี่คือภาพที่สวยงาม",
    "你好，世界！这是一张美丽的图片。",
    "繁體中文：臺灣的風景很漂亮",
    "こんにちは世界、これは美しい写真です",
    "カタカナとひらがなと漢字",
    "안녕하세요 세계, 이것은 아름다운 사진입니다",
    "ＬＯＵＤ　ＮＯＩＳＥＳ ｆｕｌｌｗｉｄｔｈ １２３",
    "ｶﾀｶﾅ ﾊﾝｶｸ ﾃﾞｽ ﾊﾟﾝ",
    "ქართული ენა",
    "Հայերեն լեզու",
    "ᚠᚢᚦᚨᚱᚲ runes",
    "ⲘⲉⲧⲢⲉⲙⲛ̀ⲭⲏⲙⲓ coptic",
    "𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝐁𝐨𝐥𝐝 𝑰𝒕𝒂𝒍𝒊𝒄",
    "ǅemal ǈubljana ǋegoš Ǳ ǳ",
    "ﬁnancial ﬂoor eﬀort oﬃce waﬄe ﬅ ﬆ Ĳssel ŉ",
    "Ⅻ Roman numerals ⅰⅱⅲ ① ② ③ ⑴ ½ ¼ ¾ ² ³ ¹",
    "٠١٢٣٤٥٦٧٨٩ ۰۱۲ ०१२३ ๐๑๒ ０１２",
    "Ꭰꭰ Cherokee ᏸ ꮰ",
    "ẞ ß straße STRASSE",
    "Ǆ ǅ ǆ ǰ ΐ ΰ և ẖ ẗ ẘ ẙ ẚ",
    "ᾈ ᾳ ῼ ᾼ ῌ ͅ ανͅ",
]

EMOJI = [
    "I love it 😍😍😍",
    "👍🏻 👍🏼 👍🏽 👍🏾 👍🏿",
    "👨‍👩‍👧‍👦 family",
    "🏳️‍🌈 🏴‍☠️ 🇺🇸 🇯🇵 🇬🇧",
    "🏴󠁧󠁢󠁷󠁬󠁳󠁿 wales flag",
    "1️⃣ #️⃣ *️⃣ keycaps",
    "❤️ ♥ ☺️ ☹ ✌️",
    "🧑🏽‍💻 coding 👩🏿‍🚀 space",
    "💩💯🔥✨🎉",
    "text with emoji🙂inside",
    "🤷‍♀️🤦🏼‍♂️",
]

HTML = [
    "fish &amp; chips",
    "fish &amp;amp; chips",
    "fish &amp;amp;amp;amp; chips",
    "&lt;b&gt;bold&lt;/b&gt;",
    "<b>bold</b> &amp; more",
    "first line &amp;\nsecond <tag> &amp;\nthird &amp;",
    "&quot;quoted&quot; &apos;single&apos;",
    "&#39;tis &#x27;twas",
    "&#8220;curly&#8221; &#x201C;hex&#x201D;",
    "&ampfoo &amp &lt3 &gtx &copy2024 &notit; &notin; &not",
    "&nbsp;&nbsp;spaces&#160;&#xa0;",
    "&#0; &#x0; &#1; &#11; &#13; &#127; &#128; &#129; &#150; &#159; &#x9f;",
    "&#55296; &#xD800; &#xDFFF; &#x110000; &#1114112; &#99999999999999999999;",
    "&#65535; &#xFFFE; &#x1FFFE; &#64976; &#xfdd0;",
    "&#x1F600; &#128512; &#X1f600;",
    "&eacute;t&eacute; &Eacute;T&EACUTE; &SZLIG; &NTILDE; &nTILDE;",
    "&Jscr;ohn &HilbertSpace;ancock &checkmark;",
    "&CounterClockwiseContourIntegral; &DoubleLongLeftRightArrow;",
    "&#;&#x;&#xg;&;&&&amp;&",
    "&amp;#39; &amp;quot; &amp;lt;",
    "AT&T R&D Q&A",
    "&frac12;&frac14 &sup2;&micro;",
    "& amp; &\tamp; &#\n39;",
    "&Aacute&aacute;&AElig&szlig",
    "&thetasym; &ThinSpace; &NegativeMediumSpace;",
    "&#65;&#066;&#x43;&#X44; &#00000000000065;",
    "&amp&amp&amp;",
    "text&hellip; it&#x2019;s ﬂubberiﬁc!",
    "&macr;\\_(ã\x83\x84)_/&macr;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "a < b &amp; c",
    "<p>x</p>\n&amp; y",
    "&#x1b;[31mred&#x1b;[0m",
    "&#12345678901234567890123;",
    "&" + "a" * 40 + ";",
    "&amp;" * 30,
]

APOS = [
    "it's there's what's he's she's",
    "don't can't won't isn't",
    "we're they're you're",
    "I've we've they've",
    "I'm you'm",
    "I'll we'll",
    "I'd you'd",
    "IT'S DON'T WE'RE I'VE I'M I'LL I'D",
    "it’s don’t we’re I’ve",
    "it‘s ‛twas ʼokina",
    "'s 't 're 've 'm 'll 'd '",
    "''s '''t rock'n'roll o'clock",
    "it'ſ teſt 'ſ ſ",
    "'ss 'tt 'rere",
    "<start_of_text> <end_of_text>",
    "<START_OF_TEXT>hello<END_OF_TEXT>",
    "x<start_of_text>y",
    "!<start_of_text>",
    "<ſtart_of_text> <ſtart_of_text>",
    "<start_of_text",
    "start_of_text end_of_text",
]

NUMBERS = [
    "1234567890",
    "3.14159 2,718 1e10 -42 +7 0x1F 100%",
    "in 2024 the price was $19.99 or €20,50 or £15 or ¥2000",
    "phone: +1 (555) 123-4567",
    "12:30pm on 2024-01-15",
    "v1.2.3-beta4",
    "ⅠⅡⅢ 𝟘𝟙𝟚 ¹²³ ⁴⁵ ₆₇",
]

PUNCT = [
    "!!!???...",
    "hello!!! world???",
    "...---...",
    "(((nested))) [[brackets]] {{braces}}",
    "a/b\\c|d_e-f+g=h*i&j^k%l$m#n@o~p`q",
    "“smart quotes” ‘single’ „low“ ‹angle› «guillemets»",
    "em—dash en–dash ellipsis… bullet•",
    "¡Hola! ¿Qué tal?",
    "©®™ §¶ †‡ °±",
    "→ ← ↑ ↓ ⇒ ∀ ∃ ∅ ∞ ≠ ≤ ≥",
    "＂ｑｕｏｔｅｄ＂ ＜ｔａｇ＞ ＆ａｍｐ；",
]

SPACES = [chr(c) for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0,
                          0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
                          0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0x180E,
                          0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)]

MOJI_SOURCES = [
    "café", "naïve résumé", "Schrödinger’s cat", "“quoted” — dash…", "São Paulo", "Zürich",
    "Ελληνικά", "русский язык", "日本語のテキスト", "😀 emoji", "½ cup", "™ ® ©", "€100",
    "à la mode", "voilà le travail", "Ñandú", "Łódź", "ç", "ü", "€", "→", "“", "—",
    "Kühe und Schafe", "crème brûlée", "señor", "Ótimo", "İstanbul", "ğ", "€ and £",
]
MOJI_ENCODINGS = ["latin-1", "sloppy-windows-1252", "sloppy-windows-1251", "sloppy-windows-1250",
                  "sloppy-windows-1253", "sloppy-windows-1254", "sloppy-windows-1257", "iso-8859-2",
                  "macroman", "cp437", "windows-1252", "cp850"]


def mojibake_cases(rng):
    out = []
    for s in MOJI_SOURCES:
        b = s.encode("utf-8")
        for enc in MOJI_ENCODINGS:
            try:
                m = b.decode(enc)
            except UnicodeDecodeError:
                m = b.decode(enc, errors="replace")
            out.append(m)
            out.append("The text " + m + " here")
            out.append(m.replace("\xa0", " "))
        out.append(b.decode("sloppy-windows-1252").encode("utf-8").decode("sloppy-windows-1252"))  # twice
        out.append(s + " and " + b.decode("sloppy-windows-1252"))  # inconsistent
    out += [
        "âœ” No problems", "sÃ³", "voilÃ le travail", "Ã la mode", "fÃ cil", "Ã s vezes", "Ã quele",
        "schÃ¶n", "Ã¼ber", "The Mona Lisa doesnÃƒÂ¢Ã¢â€šÂ¬Ã¢â€žÂ¢t have eyebrows.",
        "â€œ like this â€\ufffd", "â€œmismatched quotes\x85", "Ã\xa0", "Ã¡", "Ã ", "Â£", "Â ",
        "Ã©tÃ© Ã  Paris", "ÐŸÑ€Ð¸Ð²ÐµÑ‚", "Ñ€ÑƒÑÑÐºÐ¸Ð¹", "Ø§Ù„Ø¹Ø±Ø¨ÙŠØ©", "Î•Î»Î»Î·Î½Î¹ÎºÎ¬",
        "ã“ã‚“ã«ã¡ã¯", "ðŸ˜€", "ðŸ’©", "\xed\xa0\xbd\xed\xb2\xa9",
        "\xc0\x80", "a\xc0\x80b", "\xed\xa0\x80", "à²¹", "√±", "≈°", "‚Ä¢", "вЂ™", "ГўВЂВ™s",
        "β€™", "ā€", "Œx", "œ1", "×²", "Ø§Ù„", "ÂÂ", "x\x80y", "\x80\x81\x8d\x8f\x90\x9d",
        "\x91quoted\x92 \x93double\x94 \x96 \x97 \x85", "Ã\x83Â©", "cafÃ© \x80",
        "mixed: cafÃ© and café", "Ã© \u2014 Ã¨", "I â™¥ NY", "Ã¢â‚¬Å“", "Â½ cup", "12Â°C",
        "Ãƒ", "Ã\x81", "\xc3\x20quele", "Ã s ", "x Ã y", "Ã\u0020", "ÃƒÂ\xa0",
        "Ã¶Ã¤Ã¼ÃŸ", "ÐºÐ¾Ñ‚", "Ã¦Â\x97Â¥Ã¦Â\x9cÂ¬", "\ufffd\ufffd", "Ã\ufffd", "â\x80\x9c",
        "ÃÂ", "Ã¼\n\nÃ¶", "line one\nâ€œline twoâ€\x9d\nline three",
        # utf-8-variants finds C0 80 and CESU-8 with a regex whose `$` also
        # matches before a final newline: a last "\xc0\n" decodes as U+0000
        "cafÃ©À\n", "Ã©À\nnext", "sÃ³ À\n", "í\xa0½í²\n", "Ã© í\xa0½í²\n", "Ã©í\xa0½í²©", "x\nÃ©À\n",
        "Ã©À", "Ã©À\n\n", "Ã©À\x80\n", "Ã© í\xa0½í²\nx",
    ]
    # random mixtures of mojibake pieces and plain text
    pieces = out[:]
    for _ in range(60):
        out.append(" ".join(rng.choice(pieces + MOJI_SOURCES + WORDS) for _ in range(rng.randint(2, 5))))
    return out


def captions(rng, n):
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 14))]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.1:
            words = [w.upper() for w in words]
        s = " ".join(words)
        r = rng.random()
        if r < 0.2:
            s += "."
        elif r < 0.25:
            s += "!"
        elif r < 0.3:
            s = '"' + s + '"'
        elif r < 0.35:
            s += ", " + str(rng.randint(0, 10000))
        out.append(s)
    return out


FUZZ_POOLS = [
    (0x20, 0x7E), (0x00, 0x1F), (0x7F, 0xA0), (0xA0, 0xFF), (0x100, 0x24F), (0x250, 0x2FF),
    (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
    (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x2070, 0x214F), (0x2150, 0x218F),
    (0x2460, 0x24FF), (0x2500, 0x259F), (0x3000, 0x30FF), (0x4E00, 0x4FFF), (0xAC00, 0xD7A3),
    (0xF900, 0xFAFF), (0xFB00, 0xFB4F), (0xFE00, 0xFE6F), (0xFF00, 0xFFEF), (0xFFF0, 0xFFFF),
    (0x1D400, 0x1D7FF), (0x1F300, 0x1F6FF), (0x1F900, 0x1F9FF), (0xE0000, 0xE007F),
    (0x10000, 0x10FFFF),
]
SPECIAL_BITS = ["&", "&amp;", "&#", ";", "<", "'", "'s", "\r\n", "\x1b[1m", "ſ", "Σ", "İ", "\u0345",
                "<start_of_text>", "Ã", "Â", "€", "\xa0", " ", "  ", "\n"]


def fuzz(rng, n):
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            if rng.random() < 0.12:
                parts.append(rng.choice(SPECIAL_BITS))
                continue
            lo, hi = rng.choice(FUZZ_POOLS)
            c = rng.randint(lo, hi)
            if 0xD800 <= c <= 0xDFFF:
                c = 0xFFFD
            parts.append(chr(c))
        out.append("".join(parts))
    return out


def case_mapping_cases():
    out = ["İ", "İstanbul", "İİİ", "ΣΑΣ", "ΑΣ", "ΑΣ Α", "Σ", "ΑΣ'Α", "ΑΣ\u0301", "Α\u0301Σ", "ΑΣ:Α",
           "ΑΣΑ", "ΑΣ1", "ΑΣ.", "aΣ", "1Σ", "Σa", "ʰΣ", "AʰΣ", "ΑΣʰ", "ΑΣʰΑ", "ΑΣ\u00adΑ", "ΑΣ\u00ad",
           "ΑΣ\u200dΑ", "ǅΣ", "ⅠΣ", "ⒶΣ", "ⓐΣ", "ΑΣⒶ", "\u0345Σ", "Α\u0345Σ", "ͅ", "a\u0345b",
           "ᾼΣ", "ΣΣΣ", "ὈΔΥΣΣΕΎΣ", "ΜΆΪΟΣ ΜΆΪΟΣ", "K Å Ω ẞ", "ǈ ǋ ǲ"]
    # every character whose lowercase is not itself, a few at a time
    changed = [chr(c) for c in range(0x80, 0x20000) if not 0xD800 <= c <= 0xDFFF and chr(c).lower() != chr(c)]
    for i in range(0, len(changed), 40):
        out.append("".join(changed[i:i + 40]))
    return out


def nfc_cases(rng):
    out = []
    for s in SCRIPTS[:12] + MOJI_SOURCES[:12] + ["ḱṷṓn", "Ω Å K", "한국어 텍스트", "\u1100\u1161\u11a8",
                                                 "\u1100\u1161 \u11a8", "e\u0301\u0327", "e\u0327\u0301",
                                                 "a\u0301\u0301", "\u0301a", "q\u0307\u0323", "ș ş ţ ț",
                                                 "\u0958\u0959", "\u0f73", "\u0344", "\u2126\u212a\u212b",
                                                 "\u1e9b\u0323", "\u00c5\u030a"]:
        out.append(unicodedata.normalize("NFD", s))
        out.append(unicodedata.normalize("NFKD", s))
        out.append(s)
    marks = [chr(c) for c in range(0x300, 0x370)] + ["\u0591", "\u05b0", "\u064b", "\u093c", "\u0e48", "\u302a", "\u3099"]
    bases = list("aeiouAEIOUnNcCsSzZyY") + ["α", "ω", "ι", "υ", "η", "Α", "Ω", "и", "е", "у", "к", "г",
                                             "ウ", "か", "ㄱ", "\u1100", "\uac00"]
    for _ in range(6):  # runs of marks long enough for the counting sort
        out.append(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(33, 90))) + " x")
    for _ in range(120):
        out.append("".join(rng.choice(bases) + "".join(rng.choice(marks) for _ in range(rng.randint(0, 3)))
                           for _ in range(rng.randint(1, 6))))
    return out


def control_cases():
    out = []
    for c in list(range(0x00, 0x20)) + [0x7F] + list(range(0x80, 0xA0)) + [0x206A, 0x206F, 0xFEFF, 0xFFF9, 0xFFFB,
                                                                        0xFFFC, 0xFFFD, 0x200E, 0x202E, 0x1D173,
                                                                        0xE0041]:
        out.append("ab" + chr(c) + "cd " + chr(c))
    out += ["\x1b[31mred\x1b[0m text", "\x1b[1;32;40mbold\x1b[m", "\x1b[", "\x1b[12", "\x1b[1;2", "\x1b[٣m arabic digit",
            "\x1b[x", "\x1b]0;title\x07", "a\x00b\x00c", "\x00", "\x00\x00 \x00", "tab\tsep\tvalues",
            "win\r\nline\r\nbreaks", "mac\rline\rbreaks", "u2028\u2028u2029\u2029nel\x85end", "\r\n\r\n"]
    return out


def long_cases(rng):
    out = []
    words = [rng.choice(WORDS) for _ in range(2000)]
    out.append(" ".join(words[:80]))
    out.append(" ".join(words[:76]))
    out.append(" ".join(words[:75]))
    out.append(" ".join(words))  # ~10 kB
    out.append(" ".join(words[:300]) + " &amp; " + "é" * 50)
    out.append("a" * 500)
    out.append("ab" * 300)
    out.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(400)))
    out.append("".join(rng.choice("abcdefghijklmnopqrstuvwxyzéèàùç") for _ in range(300)))
    out.append("pneumonoultramicroscopicsilicovolcanoconiosis " * 5)
    out.append("!" * 100)
    out.append("1" * 100)
    out.append("😀" * 60)
    out.append("日本語" * 40)
    out.append("x " * 100)
    out.append("\n".join(["line &amp; %d" % i for i in range(200)]))
    return out


def main():
    rng = random.Random(20240607)
    tok = open_clip.get_tokenizer("RN50")
    assert type(tok).__name__ == "SimpleTokenizer" and tok.context_length == 77

    cases = ["", " ", "   ", "\t\n", "\n", "\u3000", "\xa0\xa0", " \u2003 \u3000 ", "a", "A", ".", "'", "é"]
    cases += captions(rng, 420)
    cases += SCRIPTS + EMOJI + HTML + APOS + NUMBERS + PUNCT
    for sp in SPACES:
        cases.append("word" + sp + "word" + sp + sp + "end" + sp)
        cases.append(sp)
    cases.append("".join(SPACES) + "all spaces" + "".join(SPACES))
    cases += mojibake_cases(rng)
    cases += case_mapping_cases()
    cases += nfc_cases(rng)
    cases += control_cases()
    cases += long_cases(rng)
    cases += fuzz(rng, 800)
    cases.append("&#" + "1" * 4301 + ";")  # Python's int() limit: open_clip raises
    cases.append("&#" + "0" * 4300 + "65;")
    cases.append("&#x" + "0" * 5000 + "41;")

    seen = set()
    lines = ["# Generated by tools/gen_token_cases.py with open_clip " + open_clip.__version__ +
             ", ftfy " + ftfy.__version__ + "; hex UTF-8 <TAB> ids (SOT..EOT) or !exception"]
    for s in cases:
        if s in seen:
            continue
        seen.add(s)
        s.encode("utf-8")  # no surrogates
        try:
            row = tok(s)[0].tolist()
            last = max(i for i, v in enumerate(row) if v == EOT)
            ids = " ".join(str(v) for v in row[: last + 1])
        except Exception as e:  # noqa: BLE001 -- what open_clip raises is the expected result
            ids = "!" + type(e).__name__
        lines.append(s.encode("utf-8").hex() + "\t" + ids)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines) - 1} cases written to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    import ftfy

    main()
