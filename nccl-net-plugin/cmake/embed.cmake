# cmake -DIN=file -DOUT=header -P embed.cmake: a binary as a C byte array.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "/* generated from unpack.cu; do not edit */\n"
  "__attribute__((aligned(8))) static const unsigned char dm_unpack_fatbin[] = {${bytes}};\n")
