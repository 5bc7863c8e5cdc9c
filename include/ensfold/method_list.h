/* The method registry: one line per unfolding method, in id order.
 *
 *   EF_METHOD(ID, "name", table)
 *
 * ID gives EF_METHOD_<ID> (config.h), "name" is what campaign.methods and
 * the result file call it, table is the method's ef_method (method.h),
 * defined in its own file under src/methods/. A method's id numbers its
 * units and seeds: new methods go at the end. This file is included with
 * EF_METHOD defined to what the includer needs (no include guard). */
EF_METHOD(IBU, "ibu", ef_method_ibu)                      /* src/methods/ibu.c */
EF_METHOD(GAN_TOPO, "gan-topo", ef_method_gan_topo)       /* src/methods/gan.c */
EF_METHOD(GAN_MIXED, "gan-mixed", ef_method_gan_mixed)    /* src/methods/gan.c */
EF_METHOD(BIN_BY_BIN, "bin-by-bin", ef_method_bin_by_bin) /* src/methods/binbybin.c */
EF_METHOD(OMNIFOLD, "omnifold", ef_method_omnifold)       /* src/methods/omnifold.c */
