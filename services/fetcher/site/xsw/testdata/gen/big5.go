//go:build ignore

// Command big5 writes testdata/chapter_big5.html: a chapter page whose bytes really are
// Big5, as pages of the old desktop site were. Run from the xsw package folder:
//
//	go run testdata/gen/big5.go
package main

import (
	"log"
	"os"

	"golang.org/x/text/encoding/traditionalchinese"
)

const page = `<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=big5" />
<title>第五章 鐵匠鋪_劍來天下_台灣小說網</title>
</head>
<body>
<div class="header"><a href="/1721851/">劍來天下</a></div>
<div id="nr_title">第五章 鐵匠鋪</div>
<div id="nr1">
&nbsp;&nbsp;&nbsp;&nbsp;鐵匠鋪在小鎮的最南邊，爐火終年不熄。<br /><br />
&nbsp;&nbsp;&nbsp;&nbsp;阮師傅赤著上身，一錘一錘敲打著燒紅的鐵胚，火星四濺。<br /><br />
&nbsp;&nbsp;&nbsp;&nbsp;「想學打鐵？」他頭也不回地問。<br /><br />
&nbsp;&nbsp;&nbsp;&nbsp;少年點頭，又搖頭：「我想學鑄劍。」<br /><br />
台灣小說網 www.xsw.tw
</div>
<div class="nr_page">
<a id="pb_prev" href="/1721851/251000005.html">上一章</a>
<a id="pb_next" href="/1721851/251000007.html">下一章</a>
</div>
</body>
</html>
`

func main() {
	b, err := traditionalchinese.Big5.NewEncoder().Bytes([]byte(page))
	if err != nil {
		log.Fatalf("encode big5: %v", err)
	}
	if err := os.WriteFile("testdata/chapter_big5.html", b, 0o644); err != nil {
		log.Fatal(err)
	}
}
