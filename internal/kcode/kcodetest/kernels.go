package kcodetest

// Kernel describes a synthetic x86-64 kernel with the functions the
// user-read deadlock witnesses look at (mm/maccess.c, mm/usercopy.c,
// arch/x86/lib/usercopy.c), in the shapes GCC gives them.
type Kernel struct {
	// NofaultFix adds d319f344561d "mm: Fix copy_from_user_nofault().": a
	// call to nmi_uaccess_okay at the top of copy_from_user_nofault.
	NofaultFix bool
	// VmallocLookup adds 0aef499f3172 "mm/usercopy: Detect vmalloc
	// overruns": check_heap_object calls find_vmap_area.
	VmallocLookup bool
	// NMIObjectCheck keeps the __check_object_size call in
	// copy_from_user_nmi that 59298997df89 removed.
	NMIObjectCheck bool
	// InlineHeapCheck inlines check_heap_object into __check_object_size.
	InlineHeapCheck bool
	// TailCall makes check_heap_object tail-call find_vmap_area.
	TailCall bool
	// Pfx gives every function a __pfx_ padding symbol; Thunks then makes
	// the nmi_uaccess_okay call land in its padding, as call depth
	// tracking patches it.
	Pfx, Thunks bool
	// Cold moves the nmi_uaccess_okay call to copy_from_user_nofault.cold.
	Cold bool
}

// Image returns the kernel's text image.
func (k Kernel) Image() Image {
	epilogue := []Insn{PopRBX, PopRBP, Jmp("__x86_return_thunk")}
	prologue := []Insn{Endbr64, Nop5, PushRBP, MovRSPRBP, PushRBX, MovRDIRBX}

	nofault := append([]Insn{}, prologue...)
	var cold []Func
	if k.NofaultFix {
		call := Call("nmi_uaccess_okay")
		if k.Thunks {
			call = CallPadding("nmi_uaccess_okay", 5)
		}
		if k.Cold {
			nofault = append(nofault, Jcc(0x5, "copy_from_user_nofault.cold"))
			cold = append(cold, Func{Name: "copy_from_user_nofault.cold", Type: 't', Body: []Insn{call, TestALAL, Ud2}})
		} else {
			nofault = append(nofault, call, TestALAL, Je8("efault"))
		}
	}
	nofault = append(nofault, MovRBXRDI, Call("__check_object_size"), Stac, RepMovsb, Clac, XorEAXEAX)
	nofault = append(nofault, epilogue...)
	nofault = append(nofault, Here("efault"), MovEFAULT)
	nofault = append(nofault, epilogue...)

	checkSize := append([]Insn{}, prologue...)
	heap := []Insn{Nop5, PushRBP, MovRSPRBP, PushRBX, MovRDIRBX, Call("__check_heap_object")}
	switch {
	case k.VmallocLookup && k.TailCall:
		heap = append(heap, PopRBX, PopRBP, Jmp("find_vmap_area"))
	case k.VmallocLookup:
		heap = append(heap, Call("find_vmap_area"))
		heap = append(heap, epilogue...)
	default:
		heap = append(heap, epilogue...)
	}
	funcs := []Func{}
	if k.InlineHeapCheck {
		checkSize = append(checkSize, Call("__check_heap_object"))
		if k.VmallocLookup {
			checkSize = append(checkSize, Call("find_vmap_area"))
		}
		checkSize = append(checkSize, epilogue...)
	} else {
		checkSize = append(checkSize, Call("check_heap_object"), Call("usercopy_abort"))
		checkSize = append(checkSize, epilogue...)
		funcs = append(funcs, Func{Name: "check_heap_object", Type: 't', Body: heap})
	}

	nmi := append([]Insn{}, prologue...)
	nmi = append(nmi, Call("nmi_uaccess_okay"), TestALAL, Je8("out"))
	if k.NMIObjectCheck {
		nmi = append(nmi, MovRBXRDI, Call("__check_object_size"))
	}
	nmi = append(nmi, Stac, RepMovsb, Clac, Here("out"))
	nmi = append(nmi, epilogue...)

	funcs = append([]Func{
		{Name: "copy_from_user_nofault", Body: nofault},
		{Name: "nmi_uaccess_okay", Body: []Insn{Endbr64, Nop5, XorEAXEAX, Ret, Int3}},
		{Name: "__check_object_size", Body: checkSize},
	}, funcs...)
	funcs = append(funcs,
		Func{Name: "__check_heap_object", Body: []Insn{Endbr64, Nop5, XorEAXEAX, Ret}},
		Func{Name: "usercopy_abort", Body: []Insn{Endbr64, Nop5, Ud2}},
		Func{Name: "find_vmap_area", Body: []Insn{Endbr64, Nop5, XorEAXEAX, Ret}},
		Func{Name: "copy_from_user_nmi", Body: nmi},
		Func{Name: "__x86_return_thunk", Body: []Insn{Ret, Int3}},
	)
	funcs = append(funcs, cold...)
	return Image{Pfx: k.Pfx, Funcs: funcs}
}
