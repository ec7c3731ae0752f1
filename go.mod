module github.com/keybind/keybind

go 1.26.8
