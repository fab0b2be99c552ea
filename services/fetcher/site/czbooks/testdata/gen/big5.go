//go:build ignore

// Command big5 writes testdata/chapter_big5.html: a chapter page whose bytes really are
// Big5, to exercise site.Decode's fallback. Run from the czbooks package folder:
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
<meta http-equiv="Content-Type" content="text/html; charset=big5">
<title>第五章 夜話 - 劍來 - 小說狂人</title>
</head>
<body>
<div class="chapter-detail">
<div class="name">第五章 夜話</div>
<div class="content">
&nbsp;&nbsp;&nbsp;&nbsp;夜深了，鐵匠鋪的爐火還沒熄。<br>
　　阮師傅赤著上身，一錘一錘敲打著燒紅的鐵胚，火星四濺。<br>
　　「想學打鐵？」他頭也不回地問。<br>
　　少年點頭，又搖頭：「我想學鑄劍。」<br>
小說狂人 czbooks.net
</div>
</div>
<a href="//czbooks.net/n/cr382b/crdic">上一章</a>
<a href="//czbooks.net/n/cr382b/crdie">下一章</a>
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
