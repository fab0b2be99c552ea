module github.com/xswtw/xsw/events

go 1.26
